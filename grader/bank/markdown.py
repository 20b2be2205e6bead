"""The seed's Markdown Q&A format (interview_questions.md), which mixes two layouts:

1. Numbered questions: ``1) What ...?`` followed by answer paragraphs, lettered ``a) ...`` blocks,
   ``- **X:** ...`` bullets or numbered lists.  Ids: ``genai-1``, ``genai-2``, ...
2. Sections ``Easy Questions`` / ``Medium Questions`` / ``Hard Questions`` holding
   ``Question N`` / ``Q: ...`` / ``A: ...`` blocks.  Ids: ``easy-1``, ``medium-3``, ...

The file was converted from a PDF, so a paragraph can end mid-sentence at a page break and go on in
the next paragraph ("Lower temperatures mean a more" / "conservative and ..."): those are joined.
Markdown emphasis and ``[text](#)`` links become plain text; bullets stay as ``- `` lines, numbered
steps as ``1. `` lines, and math such as ``$P(y|x)$`` is kept as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from grader.errors import InputError
from grader.models import Question

# The numbered questions at the top of the seed are about generative AI and have no section heading.
NUMBERED_PREFIX = "genai"
# Open-ended, multi-part explanations: harder than the seed's "easy" definitions, no deeper than "hard".
NUMBERED_DIFFICULTY = "medium"

# Topic of a question from its text: first matching rule wins (order matters: specific before general).
TOPIC_RULES: tuple[tuple[str, str], ...] = (
    (r"\bprompt", "prompt engineering"),
    (r"prun|quantiz|distill|compression", "model compression"),
    (r"generative|generated", "generative AI"),
    (r"\bGPT\b|\bBERT\b", "transformer models"),
    (r"transfer learning", "transfer learning"),
    (r"text classification", "applied NLP"),
    (r"hugging ?face", "NLP tooling"),
    (r"tensorflow|pytorch", "ML frameworks"),
    (r"missing data|imbalanced|preprocess", "data preparation"),
    (r"supervised", "ML fundamentals"),
    (r"language model|tokeni[sz]|\bNLP\b", "NLP fundamentals"),
)

_NUMBERED_Q = re.compile(r"^\s*(?:[-*]\s+)?(\d{1,3})\)\s+(?P<text>.*\?.*)$")
_SECTION = re.compile(r"^\s*#*\s*(?P<level>easy|medium|hard)\s+questions\s*$", re.IGNORECASE)
_HEADING = re.compile(r"^\s*(?:#{1,6}\s+.*|[A-Z][A-Za-z ]{0,40} Questions)\s*$")
_QUESTION_N = re.compile(r"^\s*#*\s*Question\s+(\d{1,3})\s*:?\s*$", re.IGNORECASE)
_Q_LINE = re.compile(r"^\s*Q\s*:\s*(?P<text>.*)$")
_A_LINE = re.compile(r"^\s*A\s*:\s*(?P<text>.*)$")
_LETTERED = re.compile(r"^\s*(?:[-*]\s+)?([a-z])\)\s+(?P<text>.*)$")
_BULLET = re.compile(r"^\s*[-*+\u2022]\s+(?P<text>.*)$")
_NUMBERED_ITEM = re.compile(r"^\s*(\d{1,2})\.\s+(?P<text>.*)$")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*{1,4}|_{1,2})(?=\S)(.+?)(?<=\S)\1(?!\w)")


def topic_for(question: str) -> str | None:
    for pattern, topic in TOPIC_RULES:
        if re.search(pattern, question, re.IGNORECASE):
            return topic
    return None


def strip_markdown(line: str) -> str:
    """Plain text: links become their text, emphasis markers go; math and bullets are untouched."""
    line = _LINK.sub(r"\1", line)
    for _ in range(3):  # nested emphasis (***x***, ****Q:****)
        new = _EMPHASIS.sub(r"\2", line)
        if new == line:
            break
        line = new
    return line.rstrip()


@dataclass
class _Draft:
    id: str
    line: int
    source: str
    difficulty: str
    question: str = ""
    answer_lines: list[tuple[int, str]] = field(default_factory=list)
    in_answer: bool = False


def _paragraphs(lines: list[tuple[int, str]]) -> list[list[str]]:
    out: list[list[str]] = []
    current: list[str] = []
    for _, text in lines:
        if text.strip():
            current.append(text)
        elif current:
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def _ends_mid_sentence(text: str) -> bool:
    return bool(text) and text.rstrip()[-1] not in ".?!:;)\"'"


def assemble_reference(lines: list[tuple[int, str]]) -> str:
    """The answer as plain text: paragraphs split by blank lines, one line per list item."""
    paragraphs = _paragraphs(lines)
    lettered = sum(1 for p in paragraphs for line in p if _LETTERED.match(line))
    has_bullets = any(_BULLET.match(line) and not _LETTERED.match(line) for p in paragraphs for line in p)
    # A lone "a)" is just the seed's way of starting an answer; several (or one before bullets) are a list.
    lettered_is_list = lettered >= 2 or (lettered == 1 and has_bullets)

    # Items: (kind, text) where kind is "p" (paragraph), "-" (bullet) or "1." style numbers.
    items: list[tuple[str, str]] = []
    for para in paragraphs:
        for k, raw in enumerate(para):
            line = raw.strip()
            m_let = _LETTERED.match(raw)
            m_num = _NUMBERED_ITEM.match(raw)
            m_bul = _BULLET.match(raw)
            if m_let:
                text = m_let.group("text").strip()
                items.append(("-", text) if lettered_is_list else ("p", text))
            elif m_num:
                items.append((f"{m_num.group(1)}.", m_num.group("text").strip()))
            elif m_bul:
                items.append(("-", m_bul.group("text").strip()))
            elif k > 0:
                kind, text = items[-1]  # a wrapped line continues the list item or paragraph above it
                items[-1] = (kind, f"{text} {line}")
            elif len(items) > 1 and _ends_mid_sentence(items[-2][1]) and line[:1].islower():
                # A page break cut the sentence: join it back (items[-1] is the paragraph marker).
                items.pop()
                kind, text = items[-1]
                items[-1] = (kind, f"{text} {line}")
            else:
                items.append(("p", line))
        # mark the paragraph boundary so two paragraphs stay apart
        items.append(("", ""))

    out: list[str] = []
    prev_kind = ""
    for kind, text in items:
        if not kind:
            continue
        if out:
            # Consecutive list items stay on adjacent lines; anything next to a paragraph is set apart.
            out.append("\n" if kind != "p" and prev_kind != "p" else "\n\n")
        out.append(text if kind == "p" else f"{kind} {text}")
        prev_kind = kind
    # PDF conversion left spaces before punctuation ("label y , given the input data x .").
    return re.sub(r"(?<=\w) +([,.;:])(?=\s|$)", r"\1", "".join(out).strip())


def parse_markdown_bank(text: str, path: Path, bank: str) -> tuple[list[Question], list[InputError]]:
    """Questions from the seed's Markdown format, and one problem per question that could not be read."""
    name = path.name
    drafts: list[_Draft] = []
    problems: list[InputError] = []
    section: str | None = None
    current: _Draft | None = None

    for n, raw in enumerate(text.splitlines(), start=1):
        line = strip_markdown(raw)
        stripped = line.strip()
        m_sec = _SECTION.match(stripped)
        if m_sec:
            section = m_sec.group("level").lower()
            current = None
            continue
        m_qn = _QUESTION_N.match(stripped)
        if _HEADING.match(stripped) and not m_qn:
            current = None
            continue
        if m_qn and section:
            heading = f"{section.capitalize()} Questions"
            current = _Draft(
                id=f"{section}-{int(m_qn.group(1))}",
                line=n,
                source=f"{name}: {heading}/Question {int(m_qn.group(1))} (line {n})",
                difficulty=section,
            )
            drafts.append(current)
            continue
        m_num = _NUMBERED_Q.match(line)
        if m_num and section is None:
            num = int(m_num.group(1))
            current = _Draft(
                id=f"{NUMBERED_PREFIX}-{num}",
                line=n,
                source=f"{name}: Question {num}) (line {n})",
                difficulty=NUMBERED_DIFFICULTY,
                question=m_num.group("text").strip(),
                in_answer=True,
            )
            drafts.append(current)
            continue
        if current is None:
            continue
        m_q = _Q_LINE.match(stripped)
        if m_q and not current.in_answer:
            current.question = m_q.group("text").strip()
            continue
        m_a = _A_LINE.match(stripped)
        if m_a and not current.in_answer:
            current.in_answer = True
            if m_a.group("text").strip():
                current.answer_lines.append((n, m_a.group("text")))
            continue
        if current.in_answer:
            current.answer_lines.append((n, line))
        elif stripped and not current.question:
            current.question = stripped

    if not drafts:
        raise InputError(
            "no questions found (expected '1) question?' lines or 'Question N' / 'Q:' / 'A:' blocks)", file=path
        )

    seen: dict[str, int] = {}
    questions: list[Question] = []
    for d in drafts:
        if d.id in seen:
            problems.append(
                InputError(f"duplicate question id {d.id!r} (first at line {seen[d.id]})", file=path, line=d.line,
                           field="id")
            )
            continue
        seen[d.id] = d.line
        reference = assemble_reference(d.answer_lines)
        if not d.question:
            problems.append(InputError(f"question {d.id!r} has no 'Q:' text", file=path, line=d.line,
                                       field="question"))
            continue
        if not reference:
            problems.append(InputError(f"question {d.id!r} has an empty reference answer", file=path, line=d.line,
                                       field="reference_answer"))
            continue
        try:
            questions.append(
                Question(
                    id=d.id,
                    bank=bank,
                    question=d.question,
                    reference_answer=reference,
                    difficulty=d.difficulty,
                    topic=topic_for(d.question),
                    source=d.source,
                )
            )
        except ValidationError as e:
            err = e.errors()[0]
            problems.append(InputError(err["msg"], file=path, line=d.line, field=".".join(map(str, err["loc"]))))
    return questions, problems
