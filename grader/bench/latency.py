"""Cold-start cost: a fresh `grader grade --judge none` on each embedding runtime, side by side with a fresh
process that loads SentenceTransformer and encodes the same answer, and with `import torch` alone.

    grader bench latency --runs 5          the grade on every runtime and the baselines (JSON)
    python -m grader.bench.latency --runs 3 [--only NAME ...]
                                           also each other way to load the bundled model and encode
                                           one sentence (transformers' BertModel, AutoModel, ...)

Every command runs in a fresh interpreter (imports are cold), ``runs`` times, interleaved so a burst of
load on a shared machine hits every option alike; the figures are wall seconds (median, all) and CPU
seconds (user + sys of the process and its children), which move less with other load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from grader.bench.offline import RUNTIMES, bench_env, prepare

DEFAULT_ANSWER = (
    "Pruning removes the least important weights from a neural network, which makes the model smaller "
    "and faster at inference with little loss of accuracy."
)
TARGET_S = 1.0

_ENCODE = repr([DEFAULT_ANSWER])
# Ways to load the bundled model (PATH) and encode one answer, each a fresh `python -c`.
LOAD_OPTIONS: dict[str, str] = {
    "import_torch_only": "import torch",
    "raw_sentence_transformers_encode": (
        "from sentence_transformers import SentenceTransformer\n"
        "m = SentenceTransformer(PATH, device='cpu', local_files_only=True)\n"
        f"m.encode({_ENCODE}, normalize_embeddings=True, show_progress_bar=False)"
    ),
    "light_model_torch": (
        "from grader.embedding.light_model import load_light_model\n"
        "m = load_light_model(PATH)\n"
        f"m.encode({_ENCODE}, normalize_embeddings=True)"
    ),
    "onnx_encoder": (
        "from grader.embedding.encoder import Encoder\n"
        f"Encoder(runtime='onnx').encode({_ENCODE})"
    ),
    "onnx_int8_encoder": (
        "from grader.embedding.encoder import Encoder\n"
        f"Encoder(runtime='onnx-int8').encode({_ENCODE})"
    ),
    "transformers_modeling_bert_direct": (
        "import torch\n"
        "from transformers.models.bert.modeling_bert import BertModel\n"
        "from transformers.models.bert.tokenization_bert import BertTokenizer\n"
        "m = BertModel.from_pretrained(PATH); t = BertTokenizer.from_pretrained(PATH)\n"
        f"with torch.inference_mode(): m(**t({_ENCODE}, return_tensors='pt'))"
    ),
    "transformers_auto": (
        "import torch\n"
        "from transformers import AutoModel, AutoTokenizer\n"
        "m = AutoModel.from_pretrained(PATH); t = AutoTokenizer.from_pretrained(PATH)\n"
        f"with torch.inference_mode(): m(**t({_ENCODE}, return_tensors='pt'))"
    ),
}


def run_cold(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall, CPU) seconds of one fresh process; raises with its stderr if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env or bench_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])} ... failed (exit {p.returncode}): {p.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(commands: dict[str, tuple[list[str], dict[str, str]]], runs: int) -> dict[str, dict[str, Any]]:
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(runs):  # interleaved
        for name, (cmd, env) in commands.items():
            samples[name].append(run_cold(cmd, env))
    out: dict[str, dict[str, Any]] = {}
    for name, s in samples.items():
        walls, cpus = [w for w, _ in s], [c for _, c in s]
        out[name] = {"wall_s_median": round(statistics.median(walls), 3), "wall_s_all": [round(w, 3) for w in walls],
                     "cpu_s_median": round(statistics.median(cpus), 3)}
    return out


def grade_command(question_id: str = "easy-2", rubrics_dir: Path | None = None,
                  answer: str = DEFAULT_ANSWER) -> list[str]:
    cmd = [sys.executable, "-m", "grader", "grade", "--question-id", question_id, "--judge", "none",
           "--answer", answer, "--json"]
    if rubrics_dir is not None:
        cmd += ["--rubrics", str(rubrics_dir)]
    return cmd


def grade_latency(runs: int = 5, runtimes: list[str] | tuple[str, ...] = RUNTIMES, question_id: str = "easy-2",
                  rubrics_dir: Path | None = None) -> dict[str, Any]:
    """Cold `grader grade --judge none` per runtime vs a cold raw SentenceTransformer.encode and `import torch`."""
    from grader.embedding.encoder import bundled_model_path
    from grader.embedding.runtime import resolve

    prepare(runtimes)  # a first conversion is not start-up
    path = repr(str(bundled_model_path()))
    commands: dict[str, tuple[list[str], dict[str, str]]] = {
        f"grade_{rt}": (grade_command(question_id, rubrics_dir), bench_env(rt)) for rt in runtimes
    }
    for name in ("raw_sentence_transformers_encode", "import_torch_only"):
        commands[name] = ([sys.executable, "-c", f"PATH = {path}\n" + LOAD_OPTIONS[name]], bench_env())
    load_before = os.getloadavg()[0]
    results = measure(commands, runs)
    return {
        "benchmark": "latency",
        "runs": runs,
        "default_runtime": resolve("auto"),
        "target_grade_cold_s_median": TARGET_S,
        "commands": results,
        "load_average_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cpu_count": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    from grader.embedding.encoder import bundled_model_path

    ap = argparse.ArgumentParser(prog="python -m grader.bench.latency", description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", nargs="*", choices=list(LOAD_OPTIONS))
    args = ap.parse_args(argv)
    prepare([rt for rt in RUNTIMES if rt.startswith("onnx")])
    path = repr(str(bundled_model_path()))
    commands = {name: ([sys.executable, "-c", f"PATH = {path}\n" + LOAD_OPTIONS[name]], bench_env())
                for name in (args.only or LOAD_OPTIONS)}
    print(json.dumps({"benchmark": "embedding-model cold load + 1 encode", "runs": args.runs,
                      "cpu_count": os.cpu_count(), "options": measure(commands, args.runs)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
