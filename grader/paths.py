"""Where the project's data lives: shipped prompts, rubrics and the shared data folder."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent


def shared_dir() -> Path:
    """The shared data folder: GRADER_SHARED_DIR, else ../shared beside the repository."""
    env = os.environ.get("GRADER_SHARED_DIR")
    return Path(env) if env else (REPO_ROOT.parent / "shared").resolve()


def prompts_dir() -> Path:
    """Shipped prompts: GRADER_PROMPTS_DIR, else prompts/ at the repository root."""
    env = os.environ.get("GRADER_PROMPTS_DIR")
    return Path(env) if env else REPO_ROOT / "prompts"


def default_rubrics_dir() -> Path:
    return REPO_ROOT / "rubrics"


def mohler_dev() -> Path:
    return shared_dir() / "data" / "mohler" / "dev.jsonl"


def seed_bank() -> Path:
    return shared_dir() / "seeds" / "interview_questions.md"
