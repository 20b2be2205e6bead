"""Pydantic models at the boundaries: rubric files, grade results, judge verdicts.

Everything that is written to disk or printed as JSON is one of these models, so the
rubric file format and the grade format are defined in exactly one place.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

RUBRIC_SCHEMA_VERSION = 1
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"

Verdict = Literal["met", "partial", "missed", "contradicted"]
VERDICT_CREDIT: dict[str, float] = {"met": 1.0, "partial": 0.5, "missed": 0.0, "contradicted": 0.0}


class CreditLevels(BaseModel):
    """What earns full, partial and no credit for one key point (optional, shown to the judge)."""

    model_config = ConfigDict(extra="forbid")
    full: str | None = None
    partial: str | None = None
    none: str | None = None


class Criterion(BaseModel):
    """One key point a good answer must make."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN, description="Unique within the rubric, e.g. 'c1'.")
    text: str = Field(min_length=1, description="The key point, as one idea in one sentence.")
    weight: float = Field(gt=0, le=100, description="Relative weight; weights are normalised to sum to 1.")
    keywords: list[str] = Field(default_factory=list, description="Terms whose presence signals the point.")
    synonyms: list[str] = Field(
        default_factory=list, description="Alternative phrasings of the point that also earn credit."
    )
    levels: CreditLevels | None = Field(default=None, description="What earns full, partial and no credit.")
    origin: Literal["auto", "llm", "human"] = Field(
        default="auto", description="Who wrote the point. Rebuilding only replaces 'auto'/'llm' points."
    )
    fingerprint: str | None = Field(
        default=None,
        description="Hash of the point as the builder wrote it; a mismatch means a person edited it.",
    )

    @field_validator("text")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v.strip()

    def content_hash(self) -> str:
        payload = json.dumps(
            {"text": self.text, "weight": self.weight, "keywords": self.keywords, "synonyms": self.synonyms},
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @property
    def edited_by_hand(self) -> bool:
        """True when a person wrote or changed this point since a builder produced it."""
        if self.origin == "human":
            return True
        return self.fingerprint is not None and self.fingerprint != self.content_hash()


class Question(BaseModel):
    """One question of a bank, as imported, before a rubric is built for it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN)
    bank: str = Field(default="default", pattern=ID_PATTERN)
    question: str = Field(min_length=1)
    reference_answer: str = Field(min_length=1)
    difficulty: str | None = None
    topic: str | None = None
    max_score: float = Field(default=5.0, gt=0, allow_inf_nan=False)  # .inf would make invalid JSON
    source: str | None = Field(default=None, description="Where the question came from (file and position).")

    @field_validator("question", "reference_answer")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v.strip()


class Rubric(Question):
    """A question with its reference answer and weighted key points: one file in rubrics/<bank>/."""

    schema_version: Literal[1] = RUBRIC_SCHEMA_VERSION
    criteria: list[Criterion] = Field(default_factory=list)
    builder: str | None = Field(default=None, description="Which builder produced the auto points.")

    @model_validator(mode="after")
    def _unique_criterion_ids(self) -> Rubric:
        seen: set[str] = set()
        for c in self.criteria:
            if c.id in seen:
                raise ValueError(f"duplicate criterion id {c.id!r}")
            seen.add(c.id)
        return self

    def normalised_weights(self) -> list[float]:
        total = sum(c.weight for c in self.criteria)
        return [c.weight / total for c in self.criteria] if total else []


class TokenUsage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = None

    def __add__(self, other: TokenUsage) -> TokenUsage:
        cost = None
        if self.cost_usd is not None or other.cost_usd is not None:
            cost = (self.cost_usd or 0.0) + (other.cost_usd or 0.0)
        return TokenUsage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            cost_usd=cost,
        )


class CriterionCoverage(BaseModel):
    """How well some span of the answer matches one key point (embedding scorer)."""

    id: str
    similarity: float = Field(description="Best cosine similarity of any answer span to the point.")
    coverage: float = Field(ge=0, le=1, description="Similarity mapped to 0..1 credit.")
    covered: bool
    best_span: str | None = None
    contradicted: bool = False
    contradiction: str | None = Field(default=None, description="The answer clause that contradicts the point.")
    cue: str | None = Field(default=None, description="Why it contradicts: negation, opposite word or swapped role.")


class EmbeddingResult(BaseModel):
    """The offline scorer's output."""

    score: float = Field(description="Calibrated score on 0..max_score.")
    max_score: float
    signals: dict[str, float] = Field(description="Every feature the calibration used, by name.")
    coverage: list[CriterionCoverage] = Field(default_factory=list)
    model: str
    calibration: str = Field(description="Name/provenance of the calibration that mapped signals to score.")


class CriterionVerdict(BaseModel):
    id: str
    verdict: Verdict
    comment: str = ""


class JudgeResult(BaseModel):
    """The LLM judge's output, or why there is none."""

    status: Literal["scored", "unscored"]
    score: float | None = Field(default=None, description="On 0..max_score; None when unscored.")
    max_score: float
    verdicts: list[CriterionVerdict] = Field(default_factory=list)
    feedback: str = ""
    reasoning: str = ""
    error: str | None = Field(default=None, description="Why the judge is unscored.")
    prompt_version: str
    prompt_hash: str
    model: str
    backend: str
    mode: str | None = Field(default=None, description="Structured-output mode that produced the verdict.")
    usage: TokenUsage = Field(default_factory=TokenUsage)
    cached: bool = False
    samples: list[float] = Field(default_factory=list, description="Each sample's score when --samples > 1.")
    spread: float | None = Field(default=None, description="Standard deviation across samples.")
    logprob_score: float | None = Field(default=None, description="Probability-weighted score, if offered.")
    logprobs_note: str | None = None
    notes: list[str] = Field(
        default_factory=list,
        description="What the judge layer noticed: mode negotiation, failed samples, score/verdict disagreement.",
    )

    @model_validator(mode="after")
    def _score_matches_status(self) -> JudgeResult:
        if self.status == "scored" and self.score is None:
            raise ValueError("a scored judge result needs a score")
        if self.status == "unscored" and self.score is not None:
            raise ValueError("an unscored judge result must not carry a score")
        return self


class CriterionResult(BaseModel):
    """Per key point: the embedding coverage and the judge's verdict, merged."""

    id: str
    text: str
    weight: float = Field(description="Normalised weight (the rubric's weights sum to 1).")
    coverage: float | None = None
    verdict: Verdict | None = None
    credit: float = Field(ge=0, le=1, description="Merged credit for this point.")
    status: Literal["met", "partial", "missed", "contradicted"]
    evidence: str | None = Field(default=None, description="The answer span that matched best.")
    comment: str | None = None


class ReviewReason(BaseModel):
    """Why a person should look at a grade: a short stable code and one sentence for the reader."""

    code: str = Field(description="e.g. 'disagreement', 'judge-failed', 'pass-mark'.")
    message: str


class Feedback(BaseModel):
    right: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)
    wrong: list[str] = Field(default_factory=list)
    suggestion: str | None = None
    text: str = Field(default="", description="The whole note to the candidate, as prose.")


class GradeError(BaseModel):
    """An item of `Grader.grade_many` that could not be graded (unknown question id, empty or over-long answer):
    in the result list at the item's place, as `grader batch` writes an error record for a bad row."""

    question_id: str | None = None
    score: None = Field(default=None, description="Always None: nothing was graded.")
    status: Literal["error"] = "error"
    error: str = Field(description="What is wrong with the item, e.g. \"empty answer\".")


class GradeResult(BaseModel):
    """One graded answer. Records every component so the grade can be explained and re-derived."""

    question_id: str | None = None
    score: float | None = Field(description="Final score on 0..max_score; None when unscored.")
    max_score: float
    status: Literal["graded", "fallback", "unscored"] = Field(
        description="'fallback': the judge failed and the offline score stands in for it."
    )
    judge_used: Literal["none", "openai", "langchain"]
    criteria: list[CriterionResult] = Field(default_factory=list)
    feedback: Feedback = Field(default_factory=Feedback)
    embedding: EmbeddingResult | None = None
    judge: JudgeResult | None = None
    combination: dict[str, float] = Field(
        default_factory=dict, description="Weights the final score was combined with."
    )
    warnings: list[str] = Field(default_factory=list)
    confidence: float | None = Field(
        default=None, ge=0, le=1, description="How sure the grade is (0..1); None when there is no score."
    )
    review: list[ReviewReason] = Field(
        default_factory=list, description="Why a person should check this grade; empty when there is no reason."
    )
    elapsed_ms: float | None = None
