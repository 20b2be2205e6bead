"""Write a synthetic answer file from the rubrics: same as `grader bench make-answers`.

    python bench/make_answers.py --n 10000 -o answers.jsonl [--seed 0] [--rubrics rubrics/]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from grader.paths import default_rubrics_dir
from grader.pipeline.synthetic import write_answers
from grader.rubric.store import load_rubrics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("-o", "--out", type=Path, default=Path("answers.jsonl"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rubrics", type=Path, default=default_rubrics_dir())
    args = ap.parse_args()
    path = write_answers(load_rubrics(args.rubrics), args.out, args.n, args.seed)
    print(f"wrote {args.n} answers to {path}")


if __name__ == "__main__":
    main()
