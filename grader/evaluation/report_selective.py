"""The selective-grading part of the eval report: the risk-coverage table and curve, as one report section."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from grader.evaluation.report_doc import Figure, Section, Table

if TYPE_CHECKING:
    from grader.evaluation.runner import RunResult
    from grader.evaluation.summary import EvalSummary


def selective_sections(summary: EvalSummary, runs: Sequence[RunResult] = ()) -> list[Section]:
    """Per configuration: agreement on the most confident shares and what the review flags catch; one curve."""
    tables = []
    for rs in summary.runs:
        s = rs.selective
        if s is None:
            continue
        header = ["answers kept (most confident first)", "n", "QWK", "MAE"]
        rows = [[f"{r.coverage:.0%}", str(r.n), "–" if r.qwk is None else f"{r.qwk:.3f}", f"{r.mae:.3f}"]
                for r in s.rows]
        rows.append([f"flagged for review: {s.share_flagged:.0%}", str(s.flagged),
                     "", f"flagged {s.mae_flagged:.3f}" if s.mae_flagged is not None else "–"])
        rows.append(["not flagged", str(s.n - s.flagged), "",
                     f"{s.mae_unflagged:.3f}" if s.mae_unflagged is not None else "–"])
        if s.reasons:
            rows.append(["reasons", ", ".join(f"{k} {v}" for k, v in s.reasons.items()), "", ""])
        tables.append((rs.label, Table(header, rows)))
    if not tables:
        return []
    png = risk_png(summary)
    figures = [Figure("risk_coverage", png,
                      "Mean absolute error of the answers kept, keeping the most confident first: a curve that "
                      "rises to the right means the grader's confidence picks out its own errors; the dotted line "
                      "marks the share not flagged for review.", "risk against coverage curve")] if png else []
    return [Section("Selective grading: which grades need a person",
                    paragraphs=[f"{label}: agreement on the most confident answers, and the answers flagged for "
                                "review." for label, _ in tables],
                    tables=[t for _, t in tables], figures=figures)]


def risk_png(summary: EvalSummary) -> bytes:
    """MAE of the answers kept against the share kept, most confident first: the risk-coverage curve."""
    curves = [(rs.label, rs.selective) for rs in summary.runs if rs.selective is not None and rs.selective.curve]
    if not curves:
        return b""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    for label, s in curves:
        xs, ys = zip(*s.curve, strict=True)
        ax.plot(xs, ys, marker=".", label=f"{label} (flagged {s.share_flagged:.0%})")
        ax.axvline(1 - s.share_flagged, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("share of answers kept (most confident first)")
    ax.set_ylabel("MAE of the answers kept")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(bottom=0)
    ax.set_title("Risk against coverage")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
