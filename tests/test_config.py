"""Settings precedence: flags > environment > config file > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.config import load_settings
from grader.errors import InputError


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_file_or_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings(environ={})
    assert s.judge.backend == "auto"
    assert s.judge.configured is False
    assert s.combine.judge_weight == 0.7


def test_precedence_flags_over_env_over_file(tmp_path: Path) -> None:
    cfg = _write(tmp_path / "g.toml", '[judge]\nmodel = "from-file"\ntimeout = 5\nsamples = 2\n')
    env = {"GRADER_JUDGE__MODEL": "from-env", "GRADER_JUDGE__TIMEOUT": "7"}
    s = load_settings(overrides={"judge": {"model": "from-flag"}}, config_file=cfg, environ=env)
    assert s.judge.model == "from-flag"
    assert s.judge.timeout == 7.0
    assert s.judge.samples == 2


def test_standard_openai_variables_feed_the_judge(tmp_path: Path) -> None:
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    s = load_settings(environ=env, config_file=_write(tmp_path / "e.toml", ""))
    assert s.judge.base_url == "http://127.0.0.1:9/v1"
    assert s.judge.api_key is not None and s.judge.api_key.get_secret_value() == "sk-test"
    assert s.judge.configured
    # GRADER_ wins over the standard variable.
    s2 = load_settings(environ={**env, "GRADER_JUDGE__BASE_URL": "http://127.0.0.1:8/v1"})
    assert s2.judge.base_url == "http://127.0.0.1:8/v1"


def test_grader_toml_in_working_directory_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "grader.toml", "[combine]\nembedding_weight = 0.5\njudge_weight = 0.5\n")
    assert load_settings(environ={}).combine.embedding_weight == 0.5


def test_relative_calibration_resolves_against_the_config_file(tmp_path: Path) -> None:
    sub = tmp_path / "configs"
    sub.mkdir()
    cfg = _write(sub / "tuned.yaml", "calibration: tuned.calibration.json\n")
    s = load_settings(config_file=cfg, environ={})
    assert s.calibration == sub / "tuned.calibration.json"


@pytest.mark.parametrize(
    ("name", "text", "expect"),
    [
        ("bad.toml", "[judge\nmodel=1", "bad.toml"),
        ("bad.yaml", "judge: [unclosed\n", "bad.yaml:"),
        ("bad.json", "{", "bad.json"),
        ("types.toml", '[judge]\ntimeout = "soon"\n', "judge.timeout"),
        ("neg.toml", "[judge]\nconcurrency = 0\n", "judge.concurrency"),
    ],
)
def test_bad_config_files_name_file_and_field(tmp_path: Path, name: str, text: str, expect: str) -> None:
    with pytest.raises(InputError) as err:
        load_settings(config_file=_write(tmp_path / name, text), environ={})
    assert expect in str(err.value)
    assert err.value.exit_code == 2
    assert "\n" not in str(err.value)


def test_non_utf8_config_is_reported(tmp_path: Path) -> None:
    cfg = tmp_path / "x.toml"
    cfg.write_bytes(b"[judge]\nmodel = '\xff'\n")
    with pytest.raises(InputError, match="not UTF-8"):
        load_settings(config_file=cfg, environ={})
