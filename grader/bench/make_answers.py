"""Synthetic answer files from the rubrics: the input of the offline and judge benchmarks.

    grader bench make-answers --n 10000 -o answers.jsonl       (or: python -m grader.bench.make_answers ...)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from grader.errors import InputError
from grader.models import Rubric

CACHE = Path(".grader-cache") / "bench"


def bench_rubrics(rubrics_dir: Path) -> list[Rubric]:
    from grader.rubric.store import load_rubrics

    rubrics = load_rubrics(rubrics_dir)
    if not rubrics:
        raise InputError("no rubrics: import a bank first (grader bank import)", file=rubrics_dir)
    return rubrics


def write(rubrics_dir: Path, out: Path, n: int, seed: int = 0, force: bool = False) -> Path:
    """Write n synthetic answers (mixed, truncated, perturbed reference sentences) to out as JSONL."""
    from grader.pipeline.synthetic import write_answers

    if out.exists() and not force:
        raise InputError("exists; use --force to replace it", file=out)
    return write_answers(bench_rubrics(rubrics_dir), out, n, seed)


def answers_file(n: int, rubrics_dir: Path, path: Path | None = None, seed: int = 0) -> Path:
    """The synthetic answers file for n rows, generated on first use and reused after."""
    target = path or CACHE / f"answers-{n}-seed{seed}.jsonl"
    if not target.exists():
        write(rubrics_dir, target, n, seed)
    return target


def main(argv: list[str] | None = None) -> int:
    from grader.paths import default_rubrics_dir

    ap = argparse.ArgumentParser(prog="python -m grader.bench.make_answers", description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("-o", "--out", type=Path, default=Path("answers.jsonl"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rubrics", type=Path, default=default_rubrics_dir())
    ap.add_argument("--force", action="store_true", help="replace an existing file")
    args = ap.parse_args(argv)
    path = write(args.rubrics, args.out, args.n, args.seed, args.force)
    print(f"wrote {args.n} answers to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
