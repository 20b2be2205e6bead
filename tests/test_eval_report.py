"""The report: Markdown + HTML that reference three real PNG plots; the text and JSON renderings."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np

from grader.evaluation.report import PLOTS, render_text, write_report
from grader.evaluation.runner import ItemOutcome, RunResult
from grader.evaluation.summary import summarise, to_json

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _runs() -> list[RunResult]:
    rng = np.random.default_rng(0)
    items_a, items_b = [], []
    for i in range(120):
        q = f"q{i % 8}"
        h = float(rng.integers(0, 6))
        hb = float(np.clip(h + rng.integers(-1, 2), 0, 5))
        kind = ("complete", "wrong", "partial")[i % 3]
        emb = float(np.clip(h + rng.normal(0, 1.2), 0, 5))
        jud = float(np.clip(h + rng.normal(0, 0.5), 0, 5))
        common = {"index": i, "question_id": q, "answer_kind": kind, "human": h, "human_a": h, "human_b": hb}
        items_a.append(ItemOutcome(**common, combined=emb, embedding=emb, status="graded"))
        unscored = i == 5
        items_b.append(
            ItemOutcome(
                **common, embedding=emb, judge=None if unscored else jud,
                combined=emb if unscored else 0.3 * emb + 0.7 * jud, status="fallback" if unscored else "graded",
            )
        )
    base = {"judge": "none", "elapsed_s": 0.1}
    return [
        RunResult(label="offline", items=items_a, **base),
        RunResult(label="judged", items=items_b, prompt="judge/v1", weights={"embedding": 0.3, "judge": 0.7}, **base),
    ]


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_report_writes_html_markdown_and_three_valid_pngs(tmp_path: Path) -> None:
    runs = _runs()
    summary = summarise("set.jsonl", runs, 120, 8, 5.0, resamples=50)
    html_path = write_report(summary, runs, tmp_path / "rep", command="grader eval set.jsonl --report rep")
    html = html_path.read_text()
    md = (tmp_path / "rep" / "report.md").read_text()
    srcs = re.findall(r'<img src="([^"]+)"', html)
    assert sorted(srcs) == sorted(PLOTS.values())
    for name in srcs:
        png = tmp_path / "rep" / name
        w, h = _png_size(png)
        assert w > 300 and h > 200
        assert f"]({name})" in md
    import matplotlib.image as mpimg

    img = mpimg.imread(tmp_path / "rep" / PLOTS["confusion"])
    # A heat map is not a blank canvas.
    assert img.shape[2] in (3, 4) and float(img[..., :3].std()) > 0.05
    assert html.startswith("<!DOCTYPE html>") and "</html>" in html
    for text in ("offline", "judged", "human A vs B", "Per question: offline", "Per answer kind: judged", "QWK"):
        assert text in html
    assert "grader eval set.jsonl --report rep" in md


def test_side_by_side_table_has_difference_and_human_column() -> None:
    runs = _runs()
    summary = summarise("set.jsonl", runs, 120, 8, 5.0, resamples=200)
    text = render_text(summary)
    header = next(line for line in text.splitlines() if line.startswith("metric"))
    assert "offline" in header and "judged" in header and "judged − offline" in header and "human A vs B" in header
    # The judged run is much closer to the human grade: its QWK difference is called better.
    qwk_line = next(line for line in text.splitlines() if line.startswith("QWK"))
    assert "] better" in qwk_line
    data = to_json(summary)
    for label in ("offline", "judged"):
        cfg = data["configs"][label]
        for key in ("n", "pearson", "spearman", "qwk", "mae", "rmse", "exact", "within1"):
            assert key in cfg
    assert data["configs"]["judged"]["status"] == {"fallback": 1, "graded": 119}
    assert data["configs"]["judged"]["components"]["judge"]["n"] == 119
    assert data["comparisons"][0]["diff"]["qwk"]["verdict"] == "better"
    assert data["human_human"]["n"] == 120
    json.dumps(data)  # valid JSON: no nan


def test_report_on_an_empty_run_does_not_crash(tmp_path: Path) -> None:
    run = RunResult(label="x", judge="none", elapsed_s=0.0, items=[
        ItemOutcome(index=0, question_id="q", human=3.0, status="unscored"),
        ItemOutcome(index=1, question_id="q", human=2.0, status="unscored"),
    ])
    summary = summarise("s.jsonl", [run], 2, 1, 5.0, resamples=10)
    assert summary.runs[0].n == 0
    data = to_json(summary)
    assert data["configs"]["x"]["qwk"] is None
    write_report(summary, [run], tmp_path / "r")
    assert all((tmp_path / "r" / p).is_file() for p in PLOTS.values())
