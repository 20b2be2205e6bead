"""Synthetic answer files for benchmarks and tests, made from the rubrics' reference answers.

Each answer mixes, truncates or perturbs reference sentences (and sometimes borrows from another
question), so the file exercises the whole score range. Deterministic for a given seed; streamed.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path

from grader.models import Rubric

_SENT = re.compile(r"(?<=[.!?])\s+")
KINDS = ["full", "subset", "truncated", "perturbed", "mixed", "off_topic", "terse"]
_WEIGHTS = [2, 3, 2, 3, 2, 1, 1]


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENT.split(" ".join(text.split())) if s.strip()]


def _perturb(words: list[str], rng: random.Random, vocab: list[str]) -> list[str]:
    out = list(words)
    for _ in range(max(1, len(out) // 8)):
        op = rng.random()
        i = rng.randrange(len(out))
        if op < 0.4 and len(out) > 3:
            del out[i]
        elif op < 0.7 and i + 1 < len(out):
            out[i], out[i + 1] = out[i + 1], out[i]
        else:
            out[i] = rng.choice(vocab)
    return out


def make_answer(rubric: Rubric, other: Rubric, kind: str, rng: random.Random, vocab: list[str]) -> str:
    sents = _sentences(rubric.reference_answer) or [rubric.reference_answer]
    if kind == "full":
        return " ".join(sents)
    if kind == "subset":
        k = max(1, rng.randint(1, max(1, len(sents) - 1)))
        picked = sorted(rng.sample(range(len(sents)), min(k, len(sents))))
        return " ".join(sents[i] for i in picked)
    if kind == "truncated":
        words = " ".join(sents).split()
        return " ".join(words[: max(3, int(len(words) * rng.uniform(0.2, 0.7)))])
    if kind == "perturbed":
        return " ".join(_perturb(" ".join(sents).split(), rng, vocab))
    if kind == "mixed":
        foreign = _sentences(other.reference_answer) or [other.reference_answer]
        return " ".join([rng.choice(sents), rng.choice(foreign), *rng.sample(sents, min(1, len(sents)))])
    if kind == "off_topic":
        return " ".join(_sentences(other.reference_answer)[:2]) or other.reference_answer
    words = sents[0].split()
    return " ".join(words[: max(2, len(words) // 3)])


def synthetic_rows(rubrics: list[Rubric], n: int, seed: int = 0) -> Iterator[dict[str, str]]:
    """n rows {id, question_id, answer, kind}; question ids are written as bank/id (unambiguous)."""
    if not rubrics:
        raise ValueError("no rubrics to make answers from")
    rng = random.Random(seed)
    vocab = sorted({w for r in rubrics for w in r.reference_answer.split() if w.isalpha() and len(w) > 3})
    for i in range(n):
        rubric = rng.choice(rubrics)
        other = rng.choice(rubrics)
        kind = rng.choices(KINDS, _WEIGHTS)[0]
        answer = make_answer(rubric, other, kind, rng, vocab or ["thing"])
        yield {"id": f"a{i:06d}", "question_id": f"{rubric.bank}/{rubric.id}", "answer": answer, "kind": kind}


def write_answers(rubrics: list[Rubric], path: Path, n: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in synthetic_rows(rubrics, n, seed):
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path
