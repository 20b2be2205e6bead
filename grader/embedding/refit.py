"""Refit the shipped offline calibration on several graded sets at once, and print every figure it is judged by.

    python -m grader.embedding.refit ../shared/data/mohler/dev.jsonl eval/interview/answers.jsonl \\
        eval/interview/holdout.jsonl --cap-from eval/interview/answers.jsonl --cap-from eval/interview/holdout.jsonl \\
        --holdout eval/interview/holdout-b.jsonl --name mohler-dev+interview-ridge --write grader/data/calibration.json

What it prints, each figure honest about what it saw:

1. **Per source, leave-one-question-out within the source** (the recipe refitted without each question, as
   `grader eval --cv` does): Pearson, RMSE, QWK, and per answer kind (complete, negated, ...) the mean score.
2. **The joint fit** (what ships): every source together, each weighted to the same total so neither drowns the
   other; the cap margin and stretch chosen by leave-one-question-out on the ``--cap-from`` sources (QWK on
   whole-point grades, squared error otherwise). Its figure is the joint LOQO.
3. **Holdout sets** (``--holdout``): scored by the joint fit, never fitted or tuned on.
4. **Manipulation**: every answer the injection check flags is scored again with the flagged text removed;
   the grade may not be higher with it (zero inflation, per answer).
5. **The easy-2 table** of issue 10: five answers to the pruning question.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from grader.embedding.calibration import (
    CAP_MARGINS,
    DEFAULT_ALPHA,
    DEFAULT_FEATURES,
    Calibration,
    Cap,
    fit_calibration,
    whole_points,
)
from grader.embedding.crossval import (
    DEFAULT_GATE,
    DEFAULT_GATES,
    SignalRow,
    agreement,
    balanced_weights,
    cv_predictions,
    read_graded_jsonl,
    rubrics_for,
)
from grader.errors import InputError

KIND_ORDER = ("complete", "paraphrase", "partial", "misconception", "manipulation", "vague", "wrong", "negated",
              "off-topic", "keyword-stuffed")
EASY2 = {
    "correct": "Pruning removes the least important weights from a neural network, which makes the model smaller and "
               "faster at inference with little loss of accuracy.",
    "negated": "Pruning does not reduce the size of a network; it adds weights to every layer, which slows inference "
               "and makes the model larger.",
    "vague": "It is a technique in machine learning.",
    "tree pruning": "Pruning a tree means cutting back its dead or overgrown branches in late winter so that the "
                    "garden plant grows back healthier.",
}


def load_rows(path: Path) -> tuple[list[SignalRow], list[str]]:
    """Signal rows of one graded file (rubrics: the stored ones where they match, as `grader eval` uses)."""
    from grader.embedding.calibration import extract_signals
    from grader.paths import default_rubrics_dir

    data = read_graded_jsonl(path)
    kinds = _kinds(path)
    rubrics = rubrics_for([q for q, *_ in data], default_rubrics_dir())
    signals = extract_signals([(rubrics[q.id], a) for q, a, _, _ in data])
    rows = [
        SignalRow(signals=s, score=score, max_score=q.max_score, group=f"{path.stem}:{q.id}", id=aid, kind=k)
        for s, (q, _, score, aid), k in zip(signals, data, kinds, strict=True)
    ]
    return rows, [a for _, a, _, _ in data]


def _kinds(path: Path) -> list[str | None]:
    out: list[str | None] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            out.append(json.loads(line).get("answer_kind"))
    return out


STRETCHES = (1.0, 1.1, 1.2, 1.3)


def fit_cap(rows: list[SignalRow], alpha: float = DEFAULT_ALPHA) -> tuple[float, float]:
    """(cap margin, stretch) whose leave-one-question-out predictions agree best with the graders.

    Grades in whole points (the interview sets) are agreed with by QWK, averaged over the sources the rows come
    from: the stretch exists because least squares is content with grades squeezed toward the mean, and a grader
    who gives 5 to a complete answer is not. Grades that are means of several graders (Mohler's halves) are
    agreed with by squared error, and keep the stretch at 1.
    """
    from grader.evaluation.metrics import qwk

    whole = whole_points(r.score for r in rows)
    y = np.array([r.score for r in rows])
    w = np.array([r.weight for r in rows])
    sources = [np.array([i for i, r in enumerate(rows) if r.group.split(":", 1)[0] == src])
               for src in sorted({r.group.split(":", 1)[0] for r in rows})]
    best, best_q = (CAP_MARGINS[-1], 1.0), -float("inf")
    for margin in CAP_MARGINS:
        for stretch in STRETCHES if whole else (1.0,):
            pred = cv_predictions(rows, DEFAULT_FEATURES, alpha, DEFAULT_GATE, None, DEFAULT_GATES, Cap(margin=margin),
                                  stretch)
            if whole:
                q = sum(qwk(y[idx], pred[idx], rows[idx[0]].max_score) for idx in sources) / len(sources)
            else:
                q = -float(np.average((pred - y) ** 2, weights=w))
            if q > best_q + 1e-9:
                best, best_q = (margin, stretch), q
    return best


def loqo_with_cap(rows: list[SignalRow]) -> np.ndarray:
    """Leave-one-question-out predictions, the cap margin and stretch chosen inside each fold from the other
    questions only."""
    groups = np.array([r.group for r in rows])
    pred = np.zeros(len(rows))
    for g in dict.fromkeys(groups.tolist()):
        test = groups == g
        train = [r for r, t in zip(rows, test, strict=True) if not t]
        margin, stretch = fit_cap(train)
        both = train + [r for r, t in zip(rows, test, strict=True) if t]
        p = cv_predictions(both, DEFAULT_FEATURES, DEFAULT_ALPHA, DEFAULT_GATE, None, DEFAULT_GATES,
                           Cap(margin=margin), stretch)
        pred[test] = p[len(train):]
    return pred


def figures(pred: np.ndarray, rows: list[SignalRow]) -> dict[str, float]:
    from grader.evaluation.metrics import qwk

    gold = np.array([r.score for r in rows])
    out = agreement(pred, gold)
    out["qwk"] = qwk(gold, pred, rows[0].max_score)
    return out


def kind_means(pred: np.ndarray, rows: list[SignalRow]) -> dict[str, tuple[float, float, int]]:
    """answer kind -> (mean predicted, mean human, n)."""
    out: dict[str, tuple[float, float, int]] = {}
    for k in KIND_ORDER:
        idx = [i for i, r in enumerate(rows) if r.kind == k]
        if idx:
            out[k] = (float(pred[idx].mean()), float(np.mean([rows[i].score for i in idx])), len(idx))
    return out


def _print_figures(label: str, f: dict[str, float], kinds: dict[str, tuple[float, float, int]]) -> None:
    print(f"  {label}: n {f['n']}  Pearson {f['pearson']:.3f}  Spearman {f['spearman']:.3f}  RMSE {f['rmse']:.3f}  "
          f"MAE {f['mae']:.3f}  QWK {f['qwk']:.3f}")
    if kinds:
        print("    kind              grader  human   n")
        for k, (p, h, n) in kinds.items():
            print(f"    {k:16s} {p:7.2f} {h:6.2f} {n:3d}")


def manipulation_check(cal: Calibration, path: Path) -> tuple[int, int, list[str]]:
    """(answers flagged, answers scored higher with the flagged text than without it, the inflated ids)."""
    from grader.embedding.scorer import OfflineScorer
    from grader.judge.injection import kinds, without_manipulation
    from grader.paths import default_rubrics_dir

    data = read_graded_jsonl(path)
    rubrics = rubrics_for([q for q, *_ in data], default_rubrics_dir())
    flagged = [(rubrics[q.id], a, aid) for q, a, _, aid in data if kinds(a)]
    if not flagged:
        return 0, 0, []
    scorer = OfflineScorer(calibration=cal)
    scorer.use_bank(rubrics.values())
    pairs = [(r, a) for r, a, _ in flagged]
    clean = [(r, without_manipulation(a) or " ") for r, a, _ in flagged]
    with_text = scorer.score_many(pairs)
    without = scorer.score_many(clean)
    inflated = [aid for (_, _, aid), a, b in zip(flagged, with_text, without, strict=True) if a.score > b.score + 1e-9]
    return len(flagged), len(inflated), inflated


def easy2_table(cal: Calibration) -> list[tuple[str, float, str]]:
    """The issue's pruning answers: (label, score, contradicted points with the quoted span)."""
    import random

    from grader.embedding.scorer import OfflineScorer
    from grader.paths import default_rubrics_dir
    from grader.rubric.store import find_rubric, load_rubrics

    rubric = find_rubric(default_rubrics_dir(), "easy-2")
    scorer = OfflineScorer(calibration=cal)
    scorer.use_bank(load_rubrics(default_rubrics_dir() / rubric.bank))
    out = []
    for label, text in EASY2.items():
        res = scorer.score(rubric, text)
        contra = "; ".join(f"{c.id} contradicted by {c.contradiction!r}" for c in res.coverage if c.contradicted)
        out.append((label, res.score, contra))
    rng = random.Random(0)
    words = rubric.reference_answer.split()
    salads = []
    for _ in range(3000):
        rng.shuffle(words)
        salads.append(" ".join(words))
    scores = [r.score for r in scorer.score_many([(rubric, t) for t in salads])]
    out.append(("word salad (mean of 3,000 shuffles of the reference)", float(np.mean(scores)), ""))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m grader.embedding.refit", description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, nargs="+", help="graded sets to fit on (JSONL, as grader eval reads)")
    ap.add_argument("--holdout", type=Path, action="append", default=[], help="graded sets to report, never fit on")
    ap.add_argument("--write", type=Path, default=None, help="write the joint calibration here")
    ap.add_argument("--cap-from", type=Path, action="append", default=[],
                    help="fit the cap margin on these sources only (default: all): the grading standard in which "
                         "the score follows the key points")
    ap.add_argument("--no-easy2", action="store_true", help="skip the pruning table (and its 3,000 word salads)")
    ap.add_argument("--name", default="ridge", help="the calibration's name, shown with every grade it scores")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    try:
        sources = {p: load_rows(p)[0] for p in args.data}
        holdouts = {p: load_rows(p)[0] for p in args.holdout}
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"signals for {sum(len(r) for r in sources.values()) + sum(len(r) for r in holdouts.values())} answers "
          f"in {time.perf_counter() - t0:.1f}s")
    print(f"recipe: ridge alpha {DEFAULT_ALPHA} on {', '.join(DEFAULT_FEATURES)}; gates "
          + ", ".join(f"{g.signal} {g.lo}..{g.hi}" for g in DEFAULT_GATES) + "; cap credited + margin (fitted)")

    print("\n1. leave-one-question-out within each source (cap margin chosen inside each fold)")
    notes = []
    for path, rows in sources.items():
        pred = loqo_with_cap(rows)
        f = figures(pred, rows)
        _print_figures(str(path), f, kind_means(pred, rows))
        notes.append(f"{path.name}: LOQO r {f['pearson']:.3f} RMSE {f['rmse']:.3f} QWK {f['qwk']:.3f}")

    weight = dict(zip(sources, balanced_weights([len(r) for r in sources.values()]), strict=True))
    joint = [replace(r, weight=weight[p]) for p, rows in sources.items() for r in rows]
    cap_rows = [r for r in joint if not args.cap_from or any(r.group.startswith(f"{p.stem}:") for p in args.cap_from)]
    margin, stretch = fit_cap(cap_rows)
    cap_label = ", ".join(str(p) for p in args.cap_from) or "all sources"
    print(f"\n2. joint fit: {len(joint)} answers, sources weighted equally; cap margin {margin}, stretch {stretch} "
          f"(leave-one-question-out on {cap_label})")
    cal = fit_calibration(
        [r.signals for r in joint], [r.score for r in joint], [r.group for r in joint], [r.max_score for r in joint],
        features=DEFAULT_FEATURES, alpha=DEFAULT_ALPHA, gate=DEFAULT_GATE, gates=list(DEFAULT_GATES),
        cap=Cap(margin=margin), stretch=stretch, weights=[r.weight for r in joint],
        name=args.name, data_file=args.data[0], model_name="all-MiniLM-L6-v2",
        notes=("Fitted on " + ", ".join(str(p) for p in args.data) + ", each source weighted to the same total. "
               "Per source: " + "; ".join(notes) + ". Refit: python -m grader.embedding.refit (see its docstring)."),
    )
    from grader.embedding.calibration import Source, _display_path, sha256_file

    cal.provenance.sources = [
        Source(file=_display_path(p), sha256=sha256_file(p), n_rows=len(rows), weight=weight[p])
        for p, rows in sources.items()
    ]
    cal.provenance.notes += (" Scoring these same rows with this calibration is in-sample; the honest figures are the"
                             " leave-one-question-out ones above.")
    jp = cv_predictions(joint, DEFAULT_FEATURES, DEFAULT_ALPHA, DEFAULT_GATE, None, DEFAULT_GATES, Cap(margin=margin),
                        stretch)
    for path, _rows in sources.items():
        idx = [i for i, r in enumerate(joint) if r.group.startswith(f"{path.stem}:")]
        sub = [joint[i] for i in idx]
        _print_figures(f"joint LOQO on {path}", figures(jp[idx], sub), kind_means(jp[idx], sub))

    if holdouts:
        print("\n3. holdout sets, scored by the joint fit (never fitted on)")
        for path, rows in holdouts.items():
            pred = np.array([cal.fraction(r.signals) * r.max_score for r in rows])
            _print_figures(str(path), figures(pred, rows), kind_means(pred, rows))

    print("\n4. manipulation: flagged answers scored with and without the flagged text")
    for path in [*sources, *holdouts]:
        n, inflated, ids = manipulation_check(cal, path)
        print(f"  {path}: {n} flagged, {inflated} scored higher with the manipulating text" +
              (f" ({', '.join(ids)})" if ids else ""))

    if not args.no_easy2:
        print("\n5. easy-2 (pruning), the joint fit")
        for label, score, contra in easy2_table(cal):
            print(f"  {label:55s} {score:5.2f}" + (f"   {contra}" if contra else ""))

    if args.write:
        cal.save(args.write)
        print(f"\nwrote {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
