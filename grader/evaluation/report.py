"""Render an EvalSummary: a terminal table, and a Markdown + HTML report with three PNG plots.

Plots use matplotlib's Agg backend (no display needed): human versus grader scatter, the confusion matrix as
a heat map, and per-question mean grades as bars. One panel per configuration.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

from grader.evaluation.metrics import LOWER_IS_BETTER, METRIC_NAMES
from grader.evaluation.report_selective import selective_sections, write_risk_plot
from grader.evaluation.runner import RunResult
from grader.evaluation.summary import EvalSummary, Figures, GroupRow

PLOTS = {"scatter": "scatter.png", "confusion": "confusion.png", "per_question": "per_question.png"}

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
        [g.key, str(g.n), _f(g.human_mean, 2), _f(g.grader_mean, 2), _f(g.mae, 2), _f(g.pearson, 2), _f(g.qwk, 2),
         _f(g.exact, 2), str(g.flagged)]
        for g in rows_in
    ]
    return header, rows


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def md_table(header: list[str], rows: list[list[str]]) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    out = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


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


# -- plots ---------------------------------------------------------------------------------------
def write_plots(summary: EvalSummary, runs: list[RunResult], out_dir: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out_dir.mkdir(parents=True, exist_ok=True)
    k = len(runs)
    paths = {name: out_dir / fname for name, fname in PLOTS.items()}
    rng = np.random.default_rng(0)
    top = summary.max_score

    fig, axes = plt.subplots(1, k, figsize=(4.6 * k, 4.4), squeeze=False)
    for ax, run in zip(axes[0], runs, strict=True):
        pts = [(it.human, it.combined) for it in run.items if it.combined is not None]
        if pts:
            h = np.array([p[0] for p in pts]) + rng.uniform(-0.12, 0.12, len(pts))  # jitter: grades are discrete
            g = np.array([p[1] for p in pts])
            ax.scatter(h, g, s=9, alpha=0.45)
        ax.plot([0, top], [0, top], color="grey", lw=1, ls="--")
        ax.set_xlim(-0.3, top + 0.3)
        ax.set_ylim(-0.3, top + 0.3)
        ax.set_xlabel("human grade (jittered)")
        ax.set_ylabel("grader score")
        ax.set_title(run.label)
    fig.suptitle("Human grade vs grader score")
    fig.tight_layout()
    fig.savefig(paths["scatter"], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, k, figsize=(4.6 * k, 4.2), squeeze=False)
    for ax, rs in zip(axes[0], summary.runs, strict=True):
        m = np.array(rs.confusion, dtype=float)
        ax.imshow(m, cmap="Blues", origin="lower")
        for (i, j), v in np.ndenumerate(m):
            if v:
                ax.text(j, i, str(int(v)), ha="center", va="center", fontsize=8,
                        color="white" if v > m.max() / 2 else "black")
        ax.set_xlabel("grader (whole points)")
        ax.set_ylabel("human (whole points)")
        ax.set_xticks(range(m.shape[1]))
        ax.set_yticks(range(m.shape[0]))
        ax.set_title(rs.label)
    fig.suptitle("Confusion matrix (rows: human, columns: grader)")
    fig.tight_layout()
    fig.savefig(paths["confusion"], dpi=110)
    plt.close(fig)

    keys = [g.key for g in summary.runs[0].per_question] if summary.runs else []
    fig, ax = plt.subplots(figsize=(max(6.0, 0.32 * len(keys) * (k + 1)), 4.2))
    x = np.arange(len(keys))
    width = 0.8 / (k + 1)
    human = {g.key: g.human_mean for g in summary.runs[0].per_question} if summary.runs else {}
    ax.bar(x, [human.get(key, 0.0) for key in keys], width, label="human", color="grey")
    for j, rs in enumerate(summary.runs, start=1):
        means = {g.key: g.grader_mean for g in rs.per_question}
        ax.bar(x + j * width, [means.get(key, 0.0) for key in keys], width, label=rs.label)
    ax.set_xticks(x + width * k / 2)
    ax.set_xticklabels(keys, rotation=70, fontsize=7)
    ax.set_ylabel("mean score")
    ax.set_ylim(0, top)
    ax.set_title("Mean grade per question")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(paths["per_question"], dpi=110)
    plt.close(fig)
    return paths


# -- documents -----------------------------------------------------------------------------------
def _sections(summary: EvalSummary) -> list[tuple[str, tuple[list[str], list[list[str]]] | list[str]]]:
    sections: list[tuple[str, tuple[list[str], list[list[str]]] | list[str]]] = [
        ("Configurations", describe_runs(summary)),
        ("Agreement with the human grade", main_table(summary)),
        ("Each component on its own", component_table(summary)),
    ]
    for rs in summary.runs:
        sections.append((f"Per question: {rs.label}", group_table(rs.per_question, "question")))
        if rs.per_kind:
            sections.append((f"Per answer kind: {rs.label}", group_table(rs.per_kind, "answer kind")))
        size = len(rs.confusion)
        conf = (["human \\ grader"] + [str(j) for j in range(size)],
                [[str(i)] + [str(v) for v in row] for i, row in enumerate(rs.confusion)])
        sections.append((f"Confusion matrix: {rs.label}", conf))
    sections += selective_sections(summary)  # type: ignore[arg-type]
    if summary.notes:
        sections.append(("Notes", summary.notes))
    return sections


def write_report(summary: EvalSummary, runs: list[RunResult], out_dir: Path, command: str | None = None) -> Path:
    """Write report.md, report.html and the three PNGs into out_dir; returns the HTML path."""
    paths = write_plots(summary, runs, out_dir)
    paths.update(write_risk_plot(summary, out_dir))
    title = f"Eval report: {Path(summary.dataset).name}"
    md = [f"# {title}", "", method_note(summary), ""]
    if command:
        md += ["Made with:", "", "```", command, "```", ""]
    body = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(method_note(summary))}</p>"]
    if command:
        body.append(f"<pre>{html.escape(command)}</pre>")
    for heading, content in _sections(summary):
        md += [f"## {heading}", ""]
        body.append(f"<h2>{html.escape(heading)}</h2>")
        if isinstance(content, tuple):
            md += [md_table(*content), ""]
            body.append(html_table(*content))
        else:
            md += [f"- {line}" for line in content] + [""]
            body.append("<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in content) + "</ul>")
    md += ["## Plots", ""]
    body.append("<h2>Plots</h2>")
    for name, p in paths.items():
        alt = name.replace("_", " ")
        md += [f"![{alt}]({p.name})", ""]
        body.append(f'<figure><img src="{p.name}" alt="{alt}"><figcaption>{alt}</figcaption></figure>')
    (out_dir / "report.md").write_text("\n".join(md), encoding="utf-8")
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}"
        "table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;"
        "font-size:13px;text-align:left}th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee}"
        "pre{background:#f6f6f6;padding:0.6em}"
    )
    doc = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>"
    )
    out = out_dir / "report.html"
    out.write_text(doc, encoding="utf-8")
    return out
