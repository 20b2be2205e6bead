"""`grader eval` and `grader tune` end to end: the real embedding model, the real judge client against a
loopback OpenAI-compatible server, real files. Subsets keep it fast; the full Mohler run is a command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from grader.cli import app
from grader.config import load_settings
from grader.evaluation.datasets import load_dataset
from grader.evaluation.runner import run
from grader.evaluation.summary import summarise, to_json
from grader.paths import REPO_ROOT

INTERVIEW = REPO_ROOT / "eval" / "interview" / "answers.jsonl"
METRIC_KEYS = ("n", "pearson", "spearman", "qwk", "mae", "rmse", "exact", "within1")


def _subset(src: Path, dest: Path, questions: set[str]) -> Path:
    lines = [line for line in src.read_text().splitlines() if line.strip()]
    keep = [line for line in lines if json.loads(line)["question_id"] in questions]
    dest.write_text("\n".join(keep) + "\n")
    return dest


@pytest.fixture(scope="module")
def interview_subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _subset(INTERVIEW, tmp_path_factory.mktemp("eval") / "interview.jsonl", {"easy-2", "medium-3", "hard-1"})


@pytest.fixture(scope="module")
def mohler_subset(tmp_path_factory: pytest.TempPathFactory, mohler_dev_path: Path) -> Path:
    qs = {"1.1", "1.2", "2.1", "3.3", "4.2", "5.4", "7.1", "9.2"}
    return _subset(mohler_dev_path, tmp_path_factory.mktemp("eval") / "mohler.jsonl", qs)


def _invoke(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_eval_json_prints_the_figures(interview_subset: Path) -> None:
    code, out, _ = _invoke(["eval", str(interview_subset), "--judge", "none", "--json", "--resamples", "100"])
    assert code == 0
    data = json.loads(out)
    cfg = data["configs"]["default"]
    for key in METRIC_KEYS:
        assert key in cfg
    assert cfg["n"] == 30 and data["n_questions"] == 3
    assert -1 <= cfg["pearson"] <= 1 and cfg["mae"] >= 0
    assert cfg["ci95"]["qwk"][0] <= cfg["qwk"] <= cfg["ci95"]["qwk"][1]
    assert cfg["components"]["embedding"]["n"] == 30
    assert "judge" not in cfg["components"]
    kinds = {row["key"]: row for row in cfg["per_kind"]}
    assert set(kinds) >= {"complete", "negated", "off-topic", "manipulation"}
    # The injection detector flags manipulation attempts, and nothing else, in this subset.
    assert kinds["manipulation"]["flagged"] >= 1
    assert sum(row["flagged"] for key, row in kinds.items() if key != "manipulation") == 0
    # The interview rubrics are the stored ones (same ids and question text).
    assert not any("no stored rubric" in n for n in data["notes"])


def test_eval_compares_configs_side_by_side_and_writes_report(interview_subset: Path, tmp_path: Path) -> None:
    heavy = tmp_path / "heavy.yaml"
    heavy.write_text("combine:\n  embedding_weight: 1.0\n  judge_weight: 0.0\n")
    light = tmp_path / "light.toml"
    light.write_text("[combine]\nembedding_weight = 0.2\n")
    report = tmp_path / "rep"
    args = ["eval", str(interview_subset), "--judge", "none", "--config", str(heavy), "--config", str(light),
            "--resamples", "100", "--report", str(report), "--items", str(tmp_path / "items.jsonl")]
    code, out, _ = _invoke(args)
    assert code == 0, out
    header = next(line for line in out.splitlines() if line.startswith("metric"))
    assert "heavy" in header and "light" in header and "light − heavy" in header
    # Offline, the weights do not matter: identical scores, so the difference is exactly zero, not "better".
    qwk = next(line for line in out.splitlines() if line.startswith("QWK"))
    assert "+0.000 [+0.000, +0.000] no clear difference" in qwk
    items = [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]
    assert [i["config"] for i in items] == ["heavy"] * 30 + ["light"] * 30
    assert all(i["embedding"] is not None and i["judge"] is None and "signals" not in i for i in items)
    html = (report / "report.html").read_text()
    # One self-contained file: the plots are embedded; report.md has them as PNGs beside it.
    assert html.count('<img src="data:image/png;base64,') >= 3 and 'src="scatter.png"' not in html
    for png in ("scatter.png", "confusion.png", "per_question.png"):
        assert (report / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # A second run does not overwrite the report without --force.
    code2 = subprocess.run(
        [sys.executable, "-m", "grader", *args], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120
    )
    assert code2.returncode == 2 and "--force" in code2.stderr


def test_eval_bad_input_exits_2_naming_the_place(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "q", "reference_answer": "r", "answer": "a", "score": 3}) + "\n"
                   + json.dumps({"question": "q", "reference_answer": "r", "answer": "a", "score": 9}) + "\n")
    p = subprocess.run([sys.executable, "-m", "grader", "eval", str(bad), "--strict", "--judge", "none"],
                       capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines()[-1] == f"error: {bad}:2: score 9 is above max_score 5"
    missing = subprocess.run([sys.executable, "-m", "grader", "eval", str(tmp_path / "nope.jsonl")],
                             capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert missing.returncode == 2 and "nope.jsonl: cannot read eval set" in missing.stderr


def test_tune_reports_cv_and_writes_a_config_eval_accepts(mohler_subset: Path, tmp_path: Path) -> None:
    out_cfg = tmp_path / "tuned.yaml"
    code, out, _ = _invoke(["tune", str(mohler_subset), "-o", str(out_cfg), "--judge", "none", "--json",
                            "--resamples", "100", "--inner-folds", "3"])
    assert code == 0, out
    data = json.loads(out)
    assert data["scheme"].startswith("nested: outer leave-one-question-out")
    for side in ("default", "tuned"):
        for key in METRIC_KEYS:
            assert key in data[side]["cv"]
    assert data["difference"]["qwk"]["verdict"] in ("better", "worse", "no clear difference")
    cal_path = tmp_path / "tuned.calibration.json"
    cal = json.loads(cal_path.read_text())
    import hashlib

    assert cal["provenance"]["data_sha256"] == hashlib.sha256(mohler_subset.read_bytes()).hexdigest()
    cfg = yaml.safe_load(out_cfg.read_text())
    # Written relative to the config, so the pair can be moved or committed together.
    assert cfg["calibration"] == "tuned.calibration.json"
    assert cfg["tuned"]["cv_tuned"] == pytest.approx(data["tuned"]["cv"]["qwk"], abs=1e-4)
    settings = load_settings(config_file=out_cfg, environ={})
    assert settings.calibration is not None and settings.calibration.resolve() == cal_path.resolve()
    # eval with the tuned config runs, and says the figure is in-sample.
    code, out, _ = _invoke(["eval", str(mohler_subset), "--config", "default", "--config", str(out_cfg),
                            "--judge", "none", "--json", "--resamples", "50", "--cv"])
    assert code == 0
    ev = json.loads(out)
    assert list(ev["configs"]) == ["default", "default (CV)", "tuned", "tuned (CV)"]
    assert ev["configs"]["tuned"]["calibration"].startswith("tuned on mohler.jsonl")
    # The tuned calibration was fitted on this very file; the shipped one on all of Mohler dev, which contains
    # every answer of this subset: both are in-sample and both notes point at the held-out column.
    in_sample = sorted(n for n in ev["notes"] if "IN-SAMPLE" in n)
    assert len(in_sample) == 2
    assert in_sample[0].startswith("default: IN-SAMPLE.") and "includes these answers" in in_sample[0]
    assert in_sample[1].startswith("tuned: IN-SAMPLE.") and "this very data set" in in_sample[1]
    assert "'tuned (CV)' column" in in_sample[1]
    # Refitting the written recipe per held-out question reproduces tune's figure for it.
    expected = data["chosen_cv_optimistic"]["qwk"] if data["adopted"] else data["default"]["cv"]["qwk"]
    assert ev["configs"]["tuned (CV)"]["qwk"] == pytest.approx(expected, abs=1e-9)
    pairs = [(c["a"], c["b"]) for c in ev["comparisons"]]
    assert pairs == [("default", "default (CV)"), ("default", "tuned"), ("default (CV)", "tuned (CV)")]
    assert ev["human_human"]["n"] == ev["n_items"]
    # Tuning again without --force refuses to overwrite.
    again = subprocess.run([sys.executable, "-m", "grader", "tune", str(mohler_subset), "-o", str(out_cfg)],
                           capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert again.returncode == 2 and "--force" in again.stderr


def test_eval_with_a_judge_uses_the_cache(interview_subset: Path, tmp_path: Path) -> None:
    from servers.fault_server import FaultServer

    ds = load_dataset(interview_subset)
    ds.items = ds.items[:6]
    with FaultServer() as server:
        settings = load_settings(
            {"cache_dir": str(tmp_path / "cache"),
             "judge": {"backend": "openai", "base_url": server.base_url, "model": "fault-model", "api_key": "x"}},
            environ={},
        )
        first = run(ds, settings, label="judged")
        calls = server.count
        second = run(ds, settings, label="judged")
        assert server.count == calls, "the re-run must be answered from the judge cache"
    assert calls >= 6
    assert all(it.judge is not None for it in first.items)
    assert all(it.judge_cached for it in second.items)
    assert [it.combined for it in first.items] == [it.combined for it in second.items]
    a = to_json(summarise("s", [first], 6, 1, 5.0, resamples=20))
    b = to_json(summarise("s", [second], 6, 1, 5.0, resamples=20))
    for key in METRIC_KEYS:
        assert a["configs"]["judged"][key] == b["configs"]["judged"][key]
    assert "judge" in a["configs"]["judged"]["components"]
