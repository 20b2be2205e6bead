"""`grader bench offline --engine ray`: the Ray engine's answers/s next to the local engine's, same answers.

Both are whole `grader batch --judge none` runs in subprocesses on the same file, one after the other in the
same invocation: the local engine (this process grades), then `--engine ray` on a local Ray started for the
run (no --ray-address) or the cluster in RAY_ADDRESS. The rate of each is its summary's: rows over the time
from the model being loaded (for Ray: every worker ready) to the last record. Peak memory is given for the
driver and for each worker, each its own process's peak RSS.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from grader.bench.offline import batch_run, prepare

TARGET_RATIO = 0.85


def ray_vs_local(answers: Path, rubrics_dir: Path | None = None, workers: int | None = None) -> dict[str, Any]:
    from grader.embedding.runtime import resolve

    runtime = resolve("auto")
    prepare([runtime])
    load_before = os.getloadavg()[0]
    local = batch_run(answers, runtime, rubrics_dir)
    ray_args = ["--engine", "ray", *(["--workers", str(workers)] if workers else [])]
    ray = batch_run(answers, runtime, rubrics_dir, ray_args)
    ls, rs = local["summary"], ray["summary"]
    rinfo = rs.get("ray") or {}
    return {
        "benchmark": "offline, ray engine vs local engine",
        "answers": ls["rows"],
        "runtime": runtime,
        "local": {"answers_per_s": ls["rows_per_s"], "grading_s": ls["elapsed_s"],
                  "peak_rss_mb": round(local["peak_rss_mb"], 1), "mean_score": ls["mean_score"]},
        "ray": {
            "answers_per_s": rs["rows_per_s"], "grading_s": rs["elapsed_s"],
            "workers": len(rinfo.get("workers", [])),
            "driver_peak_rss_mb": rinfo.get("driver_peak_rss_mb"),
            "worker_peak_rss_mb": [w.get("peak_rss_mb") for w in rinfo.get("workers", [])],
            # The driver, the local Ray's own processes (GCS, raylet, agents) and the workers, together.
            "peak_rss_mb_all_processes": round(ray["peak_rss_mb"], 1),
            "wall_s_including_ray_start": round(ray["wall_s"], 2),
            "restarts": rinfo.get("restarts"),
            "mean_score": rs["mean_score"],
        },
        "ratio_ray_to_local": round(rs["rows_per_s"] / ls["rows_per_s"], 3) if ls["rows_per_s"] else None,
        "target_ratio": TARGET_RATIO,
        "load_average_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cpu_count": os.cpu_count(),
    }
