"""`grader model prepare`: converts the bundled model into the cache it is given, once; refuses what it cannot convert."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runner import run_cli


@pytest.mark.slow
def test_prepare_converts_once_into_a_fresh_cache(tmp_path: Path) -> None:
    first = run_cli("model", "prepare", "--runtime", "onnx", "--cache", tmp_path)
    assert first.code == 0, first.err
    report = json.loads(first.out)
    assert report["runtime"] == "onnx" and report["converted"] is True
    assert Path(report["folder"]).parent == tmp_path and (Path(report["folder"]) / "model.onnx").is_file()
    again = run_cli("model", "prepare", "--runtime", "onnx", "--cache", tmp_path)
    assert again.code == 0 and json.loads(again.out) == {**report, "converted": False, "seconds": json.loads(again.out)["seconds"]}


def test_prepare_refuses_other_runtimes_and_other_models(tmp_path: Path) -> None:
    bad = run_cli("model", "prepare", "--runtime", "torch", "--cache", tmp_path)
    assert bad.code == 2 and "onnx or onnx-int8" in bad.err
    (tmp_path / "not-bert").mkdir()
    other = run_cli("model", "prepare", "--model", tmp_path / "not-bert", "--cache", tmp_path)
    assert other.code == 2 and other.err.startswith("error: ") and "modules.json" in other.err
    assert not list(tmp_path.glob("*-onnx-*"))  # nothing half-written left behind
