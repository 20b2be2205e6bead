"""The JSON Schema of a rubric file, generated from the pydantic models (never written by hand)."""

from __future__ import annotations

import json
from typing import Any

from grader.models import Rubric

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def rubric_json_schema() -> dict[str, Any]:
    schema = Rubric.model_json_schema()
    schema["title"] = "grader rubric file"
    schema["description"] = (
        "One question of a bank with its reference answer and weighted key points: rubrics/<bank>/<id>.yaml. "
        "Generated from grader.models.Rubric by `grader rubric schema`."
    )
    return {"$schema": SCHEMA_DIALECT, **schema}


def rubric_json_schema_text() -> str:
    return json.dumps(rubric_json_schema(), indent=2, ensure_ascii=False) + "\n"
