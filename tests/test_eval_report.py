"""The report: one self-contained HTML file (PNG plots embedded), Markdown beside it, a headline that leads with
the honest figure, and the text and JSON renderings. What it looks like in a browser: test_report_browser.py."""

from __future__ import annotations

import base64
import json
import re
import struct
from pathlib import Path

import numpy as np

from grader.evaluation.report import Section, build_report, group_table, render_text, write_report
from grader.evaluation.runner import ItemOutcome, RunResult
from grader.evaluation.summary import summarise, to_json

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IN_SAMPLE_NOTE = ("offline: IN-SAMPLE. Its calibration (calibration.json) was fitted on this very data set, so these "
                  "figures overstate agreement on new answers.")


def _runs(n_questions: int = 8, per_question: int = 15, cv_twin: bool = False) -> list[RunResult]:
    rng = np.random.default_rng(0)
    items_a, items_b, items_cv = [], [], []
    for i in range(n_questions * per_question):
        q = f"q{i % n_questions}"
        h = float(rng.integers(0, 6))
        hb = float(np.clip(h + rng.integers(-1, 2), 0, 5))
        kind = ("complete", "wrong", "partial")[i % 3]
        emb = float(np.clip(h + rng.normal(0, 1.2), 0, 5))
        jud = float(np.clip(h + rng.normal(0, 0.5), 0, 5))
        common = {"index": i, "question_id": q, "answer_kind": kind, "human": h, "human_a": h, "human_b": hb}
        items_a.append(ItemOutcome(**common, combined=emb, embedding=emb, status="graded"))
        held_out = float(np.clip(emb + rng.normal(0, 0.4), 0, 5))
        items_cv.append(ItemOutcome(**common, combined=held_out, embedding=held_out, status="graded"))
        unscored = i == 5
        items_b.append(
            ItemOutcome(
                **common, embedding=emb, judge=None if unscored else jud,
                combined=emb if unscored else 0.3 * emb + 0.7 * jud, status="fallback" if unscored else "graded",
            )
        )
    base = {"judge": "none", "elapsed_s": 0.1}
    runs = [RunResult(label="offline", items=items_a, **base)]
    if cv_twin:
        runs.append(RunResult(label="offline (CV)", items=items_cv, cross_validated=True, **base))
    runs.append(RunResult(label="judged", items=items_b, prompt="judge/v1", weights={"embedding": 0.3, "judge": 0.7},
                          **base))
    return runs


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_report_is_one_html_file_with_its_plots_embedded(tmp_path: Path) -> None:
    runs = _runs()
    summary = summarise("set.jsonl", runs, 120, 8, 5.0, resamples=50)
    html_path = write_report(summary, runs, tmp_path / "rep", command="grader eval set.jsonl --report rep")
    html = html_path.read_text()
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    # Nothing outside the file: every image is a data URI, no stylesheet or script is fetched.
    srcs = re.findall(r'<img src="([^"]+)"', html)
    assert len(srcs) >= 3 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<link" not in html and "<script" not in html
    for src in srcs:
        w, h = _png_size(base64.b64decode(src.removeprefix("data:image/png;base64,")))
        assert w >= 400 and h >= 300
    # Captions are sentences, not file names.
    captions = re.findall(r"<figcaption>([^<]+)</figcaption>", html)
    assert len(captions) == len(srcs)
    assert all(len(c.split()) >= 8 and c.rstrip().endswith(".") for c in captions)
    # report.md carries the same plots as files beside it.
    md = (tmp_path / "rep" / "report.md").read_text()
    for name in re.findall(r"\]\(([^)]+\.png)\)", md):
        assert (tmp_path / "rep" / name).read_bytes()[:8] == PNG_SIGNATURE
    assert "grader eval set.jsonl --report rep" in md and "grader eval set.jsonl --report rep" in html


def test_headline_leads_with_the_held_out_figure_and_flags_the_in_sample_one() -> None:
    runs = _runs(cv_twin=True)
    summary = summarise("set.jsonl", runs, 120, 8, 5.0, resamples=50, notes=[IN_SAMPLE_NOTE])
    report = build_report(summary, runs)
    head = report.headline
    cv = next(r for r in summary.runs if r.label == "offline (CV)")
    assert head.subject.startswith("offline (CV), held out")
    assert head.figures[0].metric == "QWK" and head.figures[0].value == f"{cv.overall.point('qwk'):.3f}"
    # The in-sample figure is named beside the held-out one, with why it overstates.
    assert "in-sample figure" in head.answer and "overstates" in head.answer and head.warning is None
    table = next(s for s in report.sections if s.heading == "All figures").tables[0]
    assert "offline ⚠ in-sample" in table.header and "offline (CV)" in table.header
    # Every other place an in-sample figure shows carries the mark too; the held-out run's do not.
    headings = [s.heading for s in report.sections]
    assert "Per question: offline ⚠ in-sample (8 questions)" in headings
    assert "Per answer kind: offline ⚠ in-sample" in headings and "Per answer kind: offline (CV)" in headings
    components = next(s for s in report.sections if s.heading == "Each component on its own").tables[0]
    assert {r[0] for r in components.rows} == {"offline ⚠ in-sample", "offline (CV)", "judged"}


def test_in_sample_headline_without_cv_carries_the_warning_beside_its_figures(tmp_path: Path) -> None:
    runs = _runs()
    summary = summarise("set.jsonl", runs, 120, 8, 5.0, resamples=50, notes=[IN_SAMPLE_NOTE])
    html = write_report(summary, runs, tmp_path / "rep").read_text()
    card = html[html.index('id="headline"'): html.index('class="plots"')]
    assert "IN-SAMPLE" in card and 'data-warning="in-sample"' in card
    assert card.index("IN-SAMPLE") < card.index('class="tiles"')


def test_headline_sets_the_grader_beside_human_agreement_with_words_not_only_colour() -> None:
    runs = _runs()
    summary = summarise("set.jsonl", runs, 120, 8, 5.0, resamples=50)
    head = build_report(summary, runs).headline
    assert [f.metric for f in head.figures] == ["QWK", "Pearson r", "MAE (lower is better)", "exact", "within 1"]
    assert all(f.human and re.fullmatch(r"\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", f.human) for f in head.figures)
    for f in head.figures:
        assert f.verdict.split()[0] in ("▲", "▼", "≈")
        assert {"▲": "good", "▼": "bad", "≈": "same"}[f.verdict[0]] == f.tone
    assert "two human graders" in head.answer


def test_differences_are_marked_by_sign_and_word(tmp_path: Path) -> None:
    runs = _runs()
    summary = summarise("set.jsonl", runs, 120, 8, 5.0, resamples=100)
    html = write_report(summary, runs, tmp_path / "rep").read_text()
    # The judged run is much closer to the human grade than the offline one.
    assert re.search(r'<td class="good">[^<]*▲ better</td>', html)
    assert "] better</td>" not in html


def test_per_question_chart_grows_one_row_per_question() -> None:
    sizes = {}
    for n in (8, 40):
        runs = _runs(n_questions=n, per_question=4)
        summary = summarise("set.jsonl", runs, 4 * n, n, 5.0, resamples=0)
        chart = next(f for s in build_report(summary, runs).sections for f in s.figures if f.name == "per_question")
        sizes[n] = _png_size(chart.png)
    assert sizes[8][0] == sizes[40][0]  # the width it is shown at does not change
    # 32 more questions, about 26 px each.
    assert 32 * 22 <= sizes[40][1] - sizes[8][1] <= 32 * 30


def test_qwk_of_a_group_with_one_human_grade_is_na_with_the_reason() -> None:
    items = [ItemOutcome(index=i, question_id="q", answer_kind="paraphrase" if i < 6 else "mixed",
                         human=5.0 if i < 6 else float(i % 4), combined=float(i % 5), status="graded")
             for i in range(12)]
    run = RunResult(label="x", judge="none", elapsed_s=0.0, items=items)
    summary = summarise("s.jsonl", [run], 12, 1, 5.0, resamples=10)
    kinds = {g.key: g for g in summary.runs[0].per_kind}
    assert kinds["paraphrase"].qwk is None and kinds["paraphrase"].qwk_undefined == "one human grade"
    assert kinds["mixed"].qwk is not None and kinds["mixed"].qwk_undefined is None
    _, rows = group_table(summary.runs[0].per_kind, "answer kind")
    assert next(r for r in rows if r[0] == "paraphrase")[6] == "n/a (one human grade)"
    assert to_json(summary)["configs"]["x"]["per_kind"][0]["qwk"] is None


def test_extra_sections_are_added_by_a_function(tmp_path: Path) -> None:
    runs = _runs()
    summary = summarise("set.jsonl", runs, 120, 8, 5.0, resamples=20)

    def coverage(s, _runs):  # type: ignore[no-untyped-def]
        return [Section("Risk and coverage", paragraphs=[f"{len(s.runs)} configurations."])]

    html = write_report(summary, runs, tmp_path / "rep", extra_sections=[coverage]).read_text()
    assert "<h2>Risk and coverage</h2><p>2 configurations.</p>" in html
    assert html.index("Risk and coverage") < html.index("<summary>Each component on its own")


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
    html = write_report(summary, [run], tmp_path / "r").read_text()
    assert "No answer was scored" in html
