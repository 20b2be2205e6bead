"""Shared fixtures. The embedding model is real and loaded once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Set before anything imports huggingface_hub: no test may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from grader.paths import REPO_ROOT, mohler_dev, seed_bank


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def seed_bank_path() -> Path:
    path = seed_bank()
    assert path.is_file(), f"seed bank missing at {path}: shared/ must sit beside the repository"
    return path


@pytest.fixture(scope="session")
def mohler_dev_path() -> Path:
    path = mohler_dev()
    assert path.is_file(), f"Mohler dev set missing at {path}: shared/ must sit beside the repository"
    return path


# --- pipeline fixtures (helper D) -------------------------------------------------------------------


@pytest.fixture(scope="session")
def seed_rubrics_dir(tmp_path_factory: pytest.TempPathFactory, seed_bank_path: Path) -> Path:
    """The seed bank imported with the deterministic builder into a private folder (bank 'interview')."""
    from grader.bank.loader import load_bank
    from grader.rubric.deterministic import build_rubric
    from grader.rubric.store import rubric_path, write_rubric

    out = tmp_path_factory.mktemp("rubrics")
    for q in load_bank(seed_bank_path, "interview").questions:
        r = build_rubric(q)
        write_rubric(r, rubric_path(out, r))
    return out


@pytest.fixture(scope="session")
def offline_grader(seed_rubrics_dir: Path):  # type: ignore[no-untyped-def]
    """A Grader with the real embedding model, no judge, over the seed rubrics (shared per session)."""
    from grader.config import load_settings
    from grader.pipeline.grader import Grader

    settings = load_settings({"judge": {"backend": "none"}})
    return Grader(settings, seed_rubrics_dir)


@pytest.fixture(scope="session")
def local_llm(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The real llama.cpp OpenAI-compatible server with SmolLM2-135M, on a free loopback port (helper C).

    Never skipped: if llama-cpp-python or the GGUF is missing, start-up raises and the tests fail loudly.
    Yields a LocalServer: .base_url, .model, .completions_served().
    """
    from grader.judge.local_server import LocalServer

    log = tmp_path_factory.mktemp("llama") / "server.log"
    with LocalServer(log_path=log, startup_timeout=180) as server:  # default threads: see default_threads()
        yield server


# --- embedding fixtures (helper B) -------------------------------------------------------------------


@pytest.fixture(scope="session")
def encoder():  # type: ignore[no-untyped-def]
    """The real bundled all-MiniLM-L6-v2 encoder, loaded once per session (the same one get_encoder returns)."""
    from grader.config import EmbeddingSettings
    from grader.embedding.encoder import get_encoder

    return get_encoder(EmbeddingSettings())
