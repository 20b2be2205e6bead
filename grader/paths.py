"""Where the project's data lives: shipped prompts, rubrics and the shared data folder."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent


def _from_checkout() -> bool:
    # A source checkout (or editable install) has pyproject.toml beside the package; an installed wheel
    # sits in site-packages, where a folder called prompts/ could belong to anyone.
    return (REPO_ROOT / "pyproject.toml").is_file()


def _installed_share() -> list[Path]:
    """Where a wheel's data-files (share/grader/...) land: beside the package for `pip install --target`,
    <prefix>/share for venvs, --prefix and --user installs (package in <prefix>/lib/pythonX.Y/site-packages)."""
    import sysconfig

    candidates = [PACKAGE_DIR.parent / "share" / "grader"]
    if len(PACKAGE_DIR.parents) > 3:
        candidates.append(PACKAGE_DIR.parents[3] / "share" / "grader")
    candidates.append(Path(sysconfig.get_path("data")) / "share" / "grader")
    return candidates


def shipped(name: str) -> Path:
    """A folder shipped with grader (prompts, rubrics): the checkout's, else the installed copy."""
    if _from_checkout():
        return REPO_ROOT / name
    for base in _installed_share():
        if (base / name).is_dir():
            return base / name
    return REPO_ROOT / name  # not found: the error that follows names the path it looked in


def shared_dir() -> Path:
    """The shared data folder: GRADER_SHARED_DIR, else ../shared beside the repository."""
    env = os.environ.get("GRADER_SHARED_DIR")
    return Path(env) if env else (REPO_ROOT.parent / "shared").resolve()


def prompts_dir() -> Path:
    """Shipped prompts: GRADER_PROMPTS_DIR, else prompts/ of the checkout or of the installed wheel."""
    env = os.environ.get("GRADER_PROMPTS_DIR")
    return Path(env) if env else shipped("prompts")


def default_rubrics_dir() -> Path:
    return shipped("rubrics")


def mohler_dev() -> Path:
    return shared_dir() / "data" / "mohler" / "dev.jsonl"


def seed_bank() -> Path:
    return shared_dir() / "seeds" / "interview_questions.md"
