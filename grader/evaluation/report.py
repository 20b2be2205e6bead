"""Render an EvalSummary: a terminal table, and a report (one self-contained HTML file, plus Markdown).

The report's first screen answers "can I trust this grader on this data?": a headline card with the honest
figures and their intervals beside human-human agreement, the in-sample warning where a figure is in-sample,
then the predicted-vs-human scatter and the confusion matrix. Long tables follow, folded. The report is a list
of sections: `write_report(..., extra_sections=[fn])` adds views, each `fn(summary, runs) -> list[Section]`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

from grader.evaluation.bootstrap import Interval
from grader.evaluation.metrics import LOWER_IS_BETTER, METRIC_NAMES
from grader.evaluation.report_doc import (
    Figure,
    Headline,
    HeadlineFigure,
    Report,
    Section,
    Table,
    Tone,
    html_table,
    md_table,
    render_html,
    render_markdown,
)
from grader.evaluation.report_plots import confusion_png, per_question_png, scatter_png
from grader.evaluation.report_selective import selective_sections
from grader.evaluation.runner import RunResult
from grader.evaluation.summary import EvalSummary, Figures, GroupRow, RunSummary

__all__ = ["LABELS", "Section", "html_table", "md_table", "render_text", "text_table", "write_report"]

SectionBuilder = Callable[[EvalSummary, Sequence[RunResult]], list[Section]]

LABELS = {
    "pearson": "Pearson r",
    "spearman": "Spearman ρ",
    "kendall": "Kendall τ-b",
    "qwk": "QWK",
    "mae": "MAE",
    "rmse": "RMSE",
    "exact": "exact",
    "within1": "within 1",
}


def _f(x: float | None, digits: int = 3, sign: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _cell(f: Figures | None, name: str) -> str:
    if f is None or f.n == 0:
        return "–"
    iv = f.metrics[name]
    return f"{_f(iv.value)} [{_f(iv.low)}, {_f(iv.high)}]"


def main_table(summary: EvalSummary) -> tuple[list[str], list[list[str]]]:
    """Rows: n then every metric; columns: each configuration, each paired difference vs the first, and
    human-human agreement when the set has two graders."""
    header = ["metric"] + [r.label for r in summary.runs]
    for c in summary.comparisons:
        header.append(f"{c.b} − {c.a}")
    if summary.human_human is not None:
        header.append("human A vs B")
    rows: list[list[str]] = []
    n_row = ["n"] + [str(r.n) for r in summary.runs] + [str(c.n) for c in summary.comparisons]
    if summary.human_human is not None:
        n_row.append(str(summary.human_human.n))
    rows.append(n_row)
    for name in METRIC_NAMES:
        label = LABELS[name] + (" (lower better)" if name in LOWER_IS_BETTER else "")
        row = [label] + [_cell(r.overall, name) for r in summary.runs]
        for c in summary.comparisons:
            d = c.diffs[name]
            row.append(f"{_f(d.diff, sign=True)} [{_f(d.low, sign=True)}, {_f(d.high, sign=True)}] {d.verdict}")
        if summary.human_human is not None:
            row.append(_cell(summary.human_human, name))
        rows.append(row)
    return header, rows


def component_table(summary: EvalSummary) -> tuple[list[str], list[list[str]]]:
    header = ["configuration", "component", "n", "QWK", "Pearson r", "MAE", "exact", "within 1"]
    rows = []
    for r in summary.runs:
        for comp, f in r.components.items():
            rows.append(
                [r.label, comp, str(f.n)]
                + [_cell(f, m) for m in ("qwk", "pearson", "mae", "exact", "within1")]
            )
        for who, f in r.vs_single_human.items():
            rows.append(
                [r.label, f"combined vs human {who.upper()} alone", str(f.n)]
                + [_cell(f, m) for m in ("qwk", "pearson", "mae", "exact", "within1")]
            )
    return header, rows


def group_table(rows_in: list[GroupRow], key_name: str) -> tuple[list[str], list[list[str]]]:
    header = [key_name, "n", "human mean", "grader mean", "MAE", "Pearson r", "QWK", "exact", "flagged"]
    rows = [
        [g.key, str(g.n), _f(g.human_mean, 2), _f(g.grader_mean, 2), _f(g.mae, 2), _f(g.pearson, 2),
         f"n/a ({g.qwk_undefined})" if g.qwk_undefined else _f(g.qwk, 2), _f(g.exact, 2), str(g.flagged)]
        for g in rows_in
    ]
    return header, rows


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def describe_runs(summary: EvalSummary) -> list[str]:
    lines = []
    for r in summary.runs:
        w = r.weights
        parts = [f"judge: {r.judge}"]
        if r.prompt:
            parts.append(f"prompt {r.prompt}")
            parts.append(f"weights embedding {w.get('embedding', 0):g} / judge {w.get('judge', 0):g}")
        if r.calibration:
            parts.append(f"calibration {r.calibration}")
        if r.config_path:
            parts.append(f"config {r.config_path}")
        status = ", ".join(f"{k} {v}" for k, v in sorted(r.status_counts.items()))
        parts.append(f"status: {status}")
        if r.skipped:
            parts.append(f"{len(r.skipped)} answer(s) not graded")
        parts.append(f"{r.elapsed_s:.1f} s")
        lines.append(f"{r.label}: " + "; ".join(parts))
    return lines


def method_note(summary: EvalSummary) -> str:
    return (
        f"{summary.n_items} answers to {summary.n_questions} questions, scale 0–{summary.max_score:g}. "
        f"Intervals: {int(summary.level * 100)}% percentile bootstrap, {summary.resamples} resamples "
        f"by {summary.unit} (seed {summary.seed}). QWK, exact and within-1 use whole points "
        "(round half up: 3.5 → 4). A difference is called better/worse only when its paired interval excludes 0."
    )


def render_text(summary: EvalSummary) -> str:
    parts = [f"eval set: {summary.dataset}", method_note(summary), ""]
    parts += describe_runs(summary)
    parts += ["", text_table(*main_table(summary))]
    comp_header, comp_rows = component_table(summary)
    if any(row[1] != "combined" for row in comp_rows):
        parts += ["", "components on their own:", text_table(comp_header, comp_rows)]
    for rs in summary.runs:
        if rs.per_kind:
            parts += ["", f"per answer kind ({rs.label}):", text_table(*group_table(rs.per_kind, "answer kind"))]
    if summary.notes:
        parts += [""] + [f"note: {n}" for n in summary.notes]
    return "\n".join(parts)


# -- which figure leads --------------------------------------------------------------------------
HEADLINE_METRICS = ("qwk", "pearson", "mae", "exact", "within1")


def in_sample_notes(summary: EvalSummary) -> dict[str, str]:
    """Configuration label -> the eval's in-sample warning for it (see grader.evaluation.notes)."""
    out: dict[str, str] = {}
    for r in summary.runs:
        for note in summary.notes:
            for marker in ("IN-SAMPLE", "PARTLY IN-SAMPLE"):
                if note.startswith(f"{r.label}: {marker}"):
                    out[r.label] = note.removeprefix(f"{r.label}: ")
    return out


def _named(label: str, in_sample: dict[str, str]) -> str:
    """A configuration's name as sections show it: in-sample ones carry the warning beside every figure."""
    return f"{label} ⚠ in-sample" if label in in_sample else label


def lead_index(summary: EvalSummary) -> int:
    """The configuration the headline shows: the first, unless it is in-sample and its held-out (--cv) twin
    exists, which is then the honest figure."""
    if not summary.runs:
        return 0
    first = summary.runs[0].label
    if first in in_sample_notes(summary):
        for i, r in enumerate(summary.runs):
            if r.label == f"{first} (CV)":
                return i
    return 0


def _versus_human(name: str, grader: Interval, human: Interval) -> tuple[str, Tone]:
    """Grader against human A vs B on one metric: better or worse only when the intervals do not overlap."""
    if not all(math.isfinite(x) for x in (grader.low, grader.high, human.low, human.high)):
        return "", "plain"
    lower = name in LOWER_IS_BETTER
    if grader.low > human.high:
        return ("▼ worse than human A vs B", "bad") if lower else ("▲ better than human A vs B", "good")
    if grader.high < human.low:
        return ("▲ better than human A vs B", "good") if lower else ("▼ worse than human A vs B", "bad")
    return "≈ about the same as human A vs B (intervals overlap)", "same"


def _qwk_reading(q: float) -> str:
    # The customary reading of kappa (Landis & Koch 1977).
    for bound, word in ((0.2, "slight"), (0.4, "fair"), (0.6, "moderate"), (0.8, "substantial")):
        if q < bound:
            return word
    return "almost perfect"


def _bias_sentence(run: RunResult) -> str:
    """How far the grader's mean score sits from the human mean: a generous or strict grader shows here first."""
    pairs = [(it.human, it.combined) for it in run.items if it.combined is not None]
    human = sum(h for h, _ in pairs) / len(pairs)
    grader = sum(g for _, g in pairs) / len(pairs)
    gap = grader - human
    if abs(gap) < 0.25:
        return f"Its mean score ({grader:.2f}) is within a quarter point of the human mean ({human:.2f})."
    side = "higher" if gap > 0 else "lower"
    return (f"On average it scores {abs(gap):.2f} points {side} than the human ({grader:.2f} against {human:.2f}): "
            "calibrating on a few dozen of your own graded answers (`grader tune`) corrects a shift like this.")


def _headline_plots(run: RunResult, rs: RunSummary, max_score: float) -> list[Figure]:
    return [
        Figure("scatter", scatter_png(run, max_score, f"Human grade vs grader score: {rs.label}"),
               "Each dot is one answer: its human grade (jittered sideways, since grades are discrete) against "
               "the grader's score. Dots on the dashed line agree exactly; above it the grader is more generous "
               "than the human, below it stricter.",
               f"scatter plot of human grade against grader score for {rs.label}"),
        Figure("confusion", confusion_png(rs, f"Confusion matrix: {rs.label}"),
               "Answers counted by human grade (rows) and grader grade (columns), both rounded to whole points. "
               "The outlined diagonal is exact agreement; cells right of it are answers the grader scored higher "
               "than the human.", f"confusion matrix for {rs.label}"),
    ]


def headline(summary: EvalSummary, runs: Sequence[RunResult]) -> Headline:
    """The first screen: the leading configuration's figures beside human-human agreement, and its plots."""
    i = lead_index(summary)
    rs = summary.runs[i]
    in_sample = in_sample_notes(summary)
    hh = summary.human_human
    figures = []
    for name in HEADLINE_METRICS:
        iv = rs.overall.metrics[name]
        verdict, tone = _versus_human(name, iv, hh.metrics[name]) if hh is not None else ("", "plain")
        figures.append(HeadlineFigure(
            metric=LABELS[name] + (" (lower is better)" if name in LOWER_IS_BETTER else ""),
            value=_f(iv.value), interval=f"[{_f(iv.low)}, {_f(iv.high)}]",
            human=_cell(hh, name) if hh is not None else None, verdict=verdict, tone=tone,
        ))
    q = rs.overall.metrics["qwk"]
    if rs.n == 0 or not math.isfinite(q.value):
        answer = "No answer was scored, so there is nothing to trust yet: see the notes below."
    elif hh is not None:
        how = {"good": "better than", "bad": "less well than", "same": "about as well as"}.get(
            _versus_human("qwk", q, hh.metrics["qwk"])[1], "about as well as")
        answer = (f"On {rs.n} answers it agrees with the human grade {how} two human graders agree with each "
                  f"other (QWK {_f(q.value)} against {_f(hh.point('qwk'))}; where the set's grade averages both "
                  "humans it is an easier target than one human: see 'Each component on its own').")
    else:
        answer = (f"On {rs.n} answers its agreement with the human grade is {_qwk_reading(q.value)} "
                  f"(QWK {_f(q.value)}, 95% interval {_f(q.low)} to {_f(q.high)}); the set has no second human "
                  "grader to compare with.")
    subject = f"{rs.label}:"
    warning = in_sample.get(rs.label)
    run = next((r for r in runs if r.label == rs.label), None)
    if run is not None and rs.n:
        answer += " " + _bias_sentence(run)
    if run is not None and run.cross_validated:
        subject = f"{rs.label}, held out (each question scored by a calibration fitted without it):"
        base = summary.runs[0]
        if base.label in in_sample:
            answer += (f" The in-sample figure (QWK {_f(base.overall.point('qwk'))}, column '{base.label}' below) "
                       "comes from a calibration fitted on these very answers and overstates agreement.")
    plots = _headline_plots(run, rs, summary.max_score) if run is not None else []
    return Headline(question="Can I trust this grader on this data?", subject=subject, answer=answer,
                    figures=figures, plots=plots, warning=warning)


# -- sections ------------------------------------------------------------------------------------
def all_figures_section(summary: EvalSummary, runs: Sequence[RunResult]) -> list[Section]:
    header, rows = main_table(summary)
    in_sample = in_sample_notes(summary)
    header = [_named(h, in_sample) for h in header]
    paragraphs = ["Every configuration and every figure, with 95% bootstrap intervals. A difference column "
                  "says better or worse only when its paired interval excludes 0."]
    paragraphs += [f"⚠ {label}: {note}" for label, note in in_sample.items()]
    return [Section("All figures", paragraphs=paragraphs, tables=[Table(header, rows)])]


def per_question_sections(summary: EvalSummary, runs: Sequence[RunResult]) -> list[Section]:
    if not summary.runs or not summary.runs[0].per_question:
        return []
    chart = Figure(
        "per_question",
        per_question_png(summary.runs[0].per_question, [(r.label, r.per_question) for r in summary.runs],
                         summary.max_score),
        "Mean grade per question: the grey bar is the human mean, each marker a configuration's mean. "
        f"Questions are sorted by how much '{summary.runs[0].label}' over-scores them, most generous at the top.",
        "mean grade per question, human and grader",
    )
    out = [Section("Mean grade per question", figures=[chart])]
    in_sample = in_sample_notes(summary)
    out += [Section(f"Per question: {_named(rs.label, in_sample)} ({len(rs.per_question)} questions)",
                    tables=[Table(*group_table(rs.per_question, "question"))], folded=True)
            for rs in summary.runs]
    return out


def per_kind_sections(summary: EvalSummary, runs: Sequence[RunResult]) -> list[Section]:
    in_sample = in_sample_notes(summary)
    out = []
    for rs in summary.runs:
        if rs.per_kind:
            out.append(Section(
                f"Per answer kind: {_named(rs.label, in_sample)}",
                paragraphs=["QWK is n/a where every answer of a kind has the same human grade: kappa is then 0 "
                            "by construction, whatever the grader does. Pearson r is n/a where either side is "
                            "constant."],
                tables=[Table(*group_table(rs.per_kind, "answer kind"))],
            ))
    return out


def other_plots_section(summary: EvalSummary, runs: Sequence[RunResult]) -> list[Section]:
    lead = lead_index(summary)
    in_sample = in_sample_notes(summary)
    figures = []
    for n, (rs, run) in enumerate(zip(summary.runs, runs, strict=True)):
        if n == lead:
            continue
        name = _named(rs.label, in_sample)
        figures.append(Figure(f"scatter-{n + 1}", scatter_png(run, summary.max_score, name),
                              f"Human grade against grader score for '{name}', one dot per answer.",
                              f"scatter plot for {rs.label}"))
        figures.append(Figure(f"confusion-{n + 1}", confusion_png(rs, name),
                              f"Confusion matrix for '{name}': human grade rows, grader grade columns.",
                              f"confusion matrix for {rs.label}"))
    return [Section("Plots of the other configurations", figures=figures, folded=True)] if figures else []


def reference_sections(summary: EvalSummary, runs: Sequence[RunResult]) -> list[Section]:
    in_sample = in_sample_notes(summary)
    header, rows = component_table(summary)
    rows = [[_named(r[0], in_sample), *r[1:]] for r in rows]
    out = [Section("Each component on its own", tables=[Table(header, rows)], folded=True)]
    for rs in summary.runs:
        size = len(rs.confusion)
        conf = Table(["human \\ grader"] + [str(j) for j in range(size)],
                     [[str(i)] + [str(v) for v in row] for i, row in enumerate(rs.confusion)])
        out.append(Section(f"Confusion matrix as a table: {_named(rs.label, in_sample)}", tables=[conf],
                           folded=True))
    out.append(Section("Configurations", bullets=describe_runs(summary), folded=True))
    if summary.notes:
        out.append(Section("Notes", bullets=summary.notes))
    return out


DEFAULT_SECTIONS: tuple[SectionBuilder, ...] = (all_figures_section, selective_sections, per_question_sections,
                                                per_kind_sections, other_plots_section)


def build_report(
    summary: EvalSummary, runs: Sequence[RunResult], command: str | None = None,
    extra_sections: Sequence[SectionBuilder] = (),
) -> Report:
    sections: list[Section] = []
    for build in (*DEFAULT_SECTIONS, *extra_sections, reference_sections):
        sections += build(summary, runs)
    return Report(title=f"Eval report: {Path(summary.dataset).name}", intro=method_note(summary),
                  headline=headline(summary, runs), sections=sections, command=command)


def write_report(
    summary: EvalSummary, runs: Sequence[RunResult], out_dir: Path, command: str | None = None,
    extra_sections: Sequence[SectionBuilder] = (),
) -> Path:
    """Write report.html (self-contained: images embedded) and report.md with its PNGs; returns the HTML path."""
    report = build_report(summary, runs, command, extra_sections)
    out_dir.mkdir(parents=True, exist_ok=True)
    for fig in [*report.headline.plots, *(f for s in report.sections for f in s.figures)]:
        (out_dir / f"{fig.name}.png").write_bytes(fig.png)
    (out_dir / "report.md").write_text(render_markdown(report), encoding="utf-8")
    out = out_dir / "report.html"
    out.write_text(render_html(report), encoding="utf-8")
    return out
