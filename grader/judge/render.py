"""Build the judge's messages from a prompt, a rubric and an answer. The answer is data, never markup.

The answer goes inside <candidate_answer id="NONCE"> ... </candidate_answer id="NONCE">. Every '<', '>'
and '&' in it is escaped, so no answer can close the block or open a fake one, whatever it guesses the
nonce to be. The nonce is derived from a hash of the inputs (not random) so the same inputs render to the
same messages and the judge cache stays stable; it still differs for every answer.
"""

from __future__ import annotations

import hashlib
import html
import json

from grader.judge.prompts import JudgePrompt
from grader.judge.schema import score_values
from grader.models import Rubric


def escape_answer(answer: str) -> str:
    # '&' too, so an answer cannot spell our own escapes ("&lt;/candidate_answer") and pass as markup.
    return html.escape(answer, quote=False)


def format_criteria(rubric: Rubric) -> str:
    if not rubric.criteria:
        return "(no key points: grade against the reference answer)"
    lines: list[str] = []
    weights = rubric.normalised_weights()
    for c, w in zip(rubric.criteria, weights, strict=True):
        lines.append(f"- id: {c.id} (weight {w:.2f})")
        lines.append(f"  point: {c.text}")
        if c.synonyms:
            lines.append(f"  also accept: {'; '.join(c.synonyms)}")
        if c.levels is not None:
            if c.levels.full:
                lines.append(f"  full credit: {c.levels.full}")
            if c.levels.partial:
                lines.append(f"  partial credit: {c.levels.partial}")
            if c.levels.none:
                lines.append(f"  no credit: {c.levels.none}")
    return "\n".join(lines)


def format_scores(values: list[float]) -> str:
    return ", ".join(str(v) for v in values)


def inputs_digest(prompt: JudgePrompt, rubric: Rubric, answer: str) -> str:
    payload = json.dumps(
        {"prompt": prompt.content_hash, "rubric": rubric.model_dump(mode="json"), "answer": answer},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def nonce_for(prompt: JudgePrompt, rubric: Rubric, answer: str) -> str:
    return inputs_digest(prompt, rubric, answer)[:12]


def build_messages(
    prompt: JudgePrompt, rubric: Rubric, answer: str, nonce: str | None = None
) -> list[dict[str, str]]:
    values = {
        "question": rubric.question,
        "reference_answer": rubric.reference_answer,
        "criteria": format_criteria(rubric),
        "max_score": _num(rubric.max_score),
        "score_values": format_scores(score_values(rubric.max_score)),
        "nonce": nonce or nonce_for(prompt, rubric, answer),
        "answer": escape_answer(answer),
    }
    return prompt.render(**{k: v for k, v in values.items() if k in prompt.input_variables})


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)
