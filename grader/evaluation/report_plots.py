"""The eval report's plots as PNG bytes (matplotlib, Agg backend: no display needed).

Each figure is drawn at the size it is shown at in report.html (100 dpi, one image pixel per CSS pixel), so
its text is as large on the page as it was drawn; the per-question chart grows one row per question.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from grader.evaluation.runner import RunResult
from grader.evaluation.summary import GroupRow, RunSummary

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

DPI = 100
# Marker shapes tell the configurations apart without relying on colour.
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11})
    return plt


def _png(fig: MplFigure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    _pyplot().close(fig)
    return buf.getvalue()


def scatter_png(run: RunResult, max_score: float, title: str) -> bytes:
    """Human grade (jittered: grades are discrete) against the grader's score, one dot per answer."""
    import numpy as np

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 4.1))
    pts = [(it.human, it.combined) for it in run.items if it.combined is not None]
    if pts:
        rng = np.random.default_rng(0)
        h = np.array([p[0] for p in pts]) + rng.uniform(-0.12, 0.12, len(pts))
        ax.scatter(h, [p[1] for p in pts], s=10, alpha=0.4, color="#1f77b4", edgecolors="none")
    ax.plot([0, max_score], [0, max_score], color="#555", lw=1, ls="--", label="exact agreement")
    ax.set_xlim(-0.3, max_score + 0.3)
    ax.set_ylim(-0.3, max_score + 0.3)
    ax.set_xlabel("human grade (jittered sideways)")
    ax.set_ylabel("grader score")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=9, frameon=False)
    fig.tight_layout()
    return _png(fig)


def confusion_png(rs: RunSummary, title: str) -> bytes:
    """The confusion matrix as a heat map with counts; the diagonal (exact agreement) outlined."""
    import numpy as np

    plt = _pyplot()
    m = np.array(rs.confusion, dtype=float)
    fig, ax = plt.subplots(figsize=(5.0, 4.1))
    ax.imshow(m, cmap="Blues", origin="lower")
    top = m.max() if m.size else 0
    for (i, j), v in np.ndenumerate(m):
        if v:
            ax.text(j, i, str(int(v)), ha="center", va="center", fontsize=10,
                    color="white" if v > top / 2 else "black")
    for d in range(min(m.shape)):
        ax.add_patch(plt.Rectangle((d - 0.5, d - 0.5), 1, 1, fill=False, lw=1.6, ec="#d62728"))
    ax.set_xlabel("grader (whole points)")
    ax.set_ylabel("human (whole points)")
    ax.set_xticks(range(m.shape[1]))
    ax.set_yticks(range(m.shape[0]))
    ax.set_title(title)
    fig.tight_layout()
    return _png(fig)


def per_question_png(human: Sequence[GroupRow], runs: Sequence[tuple[str, Sequence[GroupRow]]],
                     max_score: float) -> bytes:
    """Mean grade per question as a dot plot: one row per question (the figure grows with them), the human
    mean as a grey bar, each configuration's mean as a marker of its own shape. Rows sorted by how much the
    first configuration over-scores (most generous on top)."""
    plt = _pyplot()
    human_mean = {g.key: g.human_mean for g in human}
    lead = {g.key: g.grader_mean for g in runs[0][1]} if runs else {}
    keys = sorted(human_mean, key=lambda k: lead.get(k, 0.0) - human_mean[k])
    n = max(len(keys), 1)
    fig, ax = plt.subplots(figsize=(8.6, 1.3 + 0.26 * n))
    y = list(range(len(keys)))
    ax.barh(y, [human_mean[k] for k in keys], height=0.55, color="#cfcfcf", label="human mean")
    for j, (label, rows) in enumerate(runs):
        means = {g.key: g.grader_mean for g in rows}
        ax.scatter([means.get(k, float("nan")) for k in keys], y, marker=MARKERS[j % len(MARKERS)], s=30,
                   zorder=3, label=f"{label} mean")
    ax.set_yticks(y)
    ax.set_yticklabels(keys, fontsize=9)
    ax.set_ylim(-0.7, len(keys) - 0.3)
    ax.set_xlim(0, max_score)
    ax.set_xlabel("mean score")
    ax.grid(axis="x", color="#eee")
    ax.set_axisbelow(True)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(len(runs) + 1, 4), fontsize=9,
              frameon=False)
    fig.tight_layout()
    return _png(fig)
