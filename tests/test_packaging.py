"""A wheel install (not the editable checkout) still finds the shipped prompts and rubrics."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.paths import REPO_ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project built into a wheel from a copy of the checkout and installed with pip --target."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO_ROOT / name, src / name)
    for name in ("grader", "prompts", "rubrics"):
        shutil.copytree(REPO_ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path_factory.mktemp("wheels")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src)],
                   check=True, capture_output=True, cwd=src)
    (wheel,) = wheels.glob("grader-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith("data/share/grader/prompts/judge/v1.yaml") for n in names)
    assert sum(n.startswith("grader-") and "/share/grader/rubrics/interview/" in n for n in names) == 22
    target = tmp_path_factory.mktemp("site")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True,
                   capture_output=True)
    return target


def _run(target: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("GRADER_PROMPTS_DIR", None)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd)


def test_installed_copy_finds_prompts_and_rubrics(installed: Path, tmp_path: Path) -> None:
    code = (
        "import grader.paths as p; from grader.judge.prompts import load_prompt; "
        "print(p.PACKAGE_DIR); print(p.prompts_dir()); print(p.default_rubrics_dir()); "
        "print(load_prompt('judge/v1').version)"
    )
    r = _run(installed, tmp_path, "-c", code)
    assert r.returncode == 0, r.stderr
    package, prompts, rubrics, version = r.stdout.split()
    assert Path(package) == installed / "grader"  # the wheel's copy, not the checkout
    assert Path(prompts) == installed / "share" / "grader" / "prompts"
    assert Path(rubrics) == installed / "share" / "grader" / "rubrics"
    assert version


def test_installed_cli_shows_a_shipped_rubric(installed: Path, tmp_path: Path) -> None:
    r = _run(installed, tmp_path, "-m", "grader", "rubric", "show", "easy-2")
    assert r.returncode == 0, r.stderr
    assert "What is pruning in model compression?" in r.stdout
