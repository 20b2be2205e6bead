"""Every command in README.md runs as written.

The README's shell examples are extracted and run, in README order, in a scratch copy of the repository's data
(rubrics/, eval/, prompts/, with ../shared beside it), so that nothing they write touches the checkout.

Conventions for README authors (this test enforces them):

- Blocks fenced as ```console, ```bash, ```sh, ```shell or ```python are run; so is an unlabelled block with a
  line starting with "$ ". Other blocks (```toml, ```json, ```text, output-only) are not.
- In a console block, a command is a line starting with "$ " (a trailing backslash continues it on the next
  line); the lines up to the next "$ " are its output, shown for people and not compared. In a bash/sh block,
  every line that is not blank or a # comment is a command. A python block runs as one script.
- A command must exit 0, unless it ends with a comment saying otherwise: `$ grader rubric validate bad/  # exits 2`.
- `$ cat FILE` followed by its output creates FILE with that output when it does not exist yet: that is how
  an example shows the input file it then uses.
- A block that cannot run here is preceded (on the line just above its fence) by
  `<!-- readme-test: skip (why) -->`, with the reason: it needs a judge endpoint or an API key, holds the
  terminal (serve-local), installs things (make setup), or is a long run (full Mohler eval, tune on 1,074
  answers). Keep these few: every skip is a command nobody checks.

The judge is never reached: OPENAI_* and GRADER_* variables are removed, so `--judge auto` grades offline.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from grader.paths import REPO_ROOT, shared_dir

README = REPO_ROOT / "README.md"
RUN_LANGS = {"console", "bash", "sh", "shell", "python"}
SKIP = re.compile(r"^<!--\s*readme-test:\s*skip\s*\((?P<why>[^)]+)\)\s*-->$")
EXPECT = re.compile(r"#\s*exits?\s+(?P<code>\d+)\s*$")
CAT = re.compile(r"^cat\s+(?P<path>[\w./-]+)$")


@dataclass
class Command:
    text: str
    output: list[str] = field(default_factory=list)

    @property
    def expected_exit(self) -> int:
        m = EXPECT.search(self.text)
        return int(m.group("code")) if m else 0


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    lang: str
    body: list[str]
    skip: str | None

    @property
    def runs(self) -> bool:
        return self.lang in RUN_LANGS or (self.lang == "" and any(b.startswith("$ ") for b in self.body))

    def commands(self) -> list[Command]:
        if self.lang == "python":
            return [Command("\n".join(self.body))]
        console = self.lang == "console" or self.lang == ""
        out: list[Command] = []
        lines = iter(self.body)
        for raw in lines:
            line = raw.rstrip()
            if console and not line.startswith("$ "):
                if out:
                    out[-1].output.append(raw)
                continue
            if not console and (not line.strip() or line.lstrip().startswith("#")):
                continue
            text = line.removeprefix("$ ")
            while text.endswith("\\"):
                text = text[:-1].rstrip() + " " + next(lines).strip()
            out.append(Command(text))
        return out


def readme_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m.group(1)
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        above = next((lines[k].strip() for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        marker = SKIP.match(above)
        blocks.append(Block(start + 1, lang, lines[start + 1: j], marker.group("why") if marker else None))
        i = j + 1
    return blocks


BLOCKS = [b for b in readme_blocks(README.read_text(encoding="utf-8")) if b.runs]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """work/repo holds copies of the data the README's commands read; work/shared is the real shared data."""
    root = tmp_path_factory.mktemp("readme")
    repo = root / "repo"
    repo.mkdir()
    for name in ("rubrics", "eval", "prompts"):
        shutil.copytree(REPO_ROOT / name, repo / name)
    (root / "shared").symlink_to(shared_dir(), target_is_directory=True)
    return repo


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "GRADER_"))}
    # `grader` is this checkout's code, whatever console script is on PATH.
    bin_dir = Path(sys.executable).parent
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(REPO_ROOT),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               GRADER_SHARED_DIR=str(shared_dir()))
    return env


SHELL_PRELUDE = f'set -o pipefail; grader() {{ "{sys.executable}" -m grader "$@"; }}\n'


def _run(cmd: Command, lang: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    if lang == "python":
        script = cwd / "readme_example.py"
        script.write_text(cmd.text, encoding="utf-8")
        argv = [sys.executable, str(script)]
    else:
        cat = CAT.match(cmd.text.strip())
        if cat and cmd.output and not (cwd / cat.group("path")).exists():
            (cwd / cat.group("path")).write_text("\n".join(cmd.output) + "\n", encoding="utf-8")
        argv = ["bash", "-c", SHELL_PRELUDE + cmd.text]
    return subprocess.run(argv, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=600)


def test_readme_has_runnable_examples() -> None:
    runnable = [c for b in BLOCKS if b.skip is None for c in b.commands()]
    assert sum(1 for c in runnable if "grader " in c.text) >= 10
    # Blocks left out are few and each says why (the marker's reason is required by its pattern).
    # Benchmarks, a Ray cluster, a judge endpoint and the long eval runs are skipped, each with its reason.
    assert len([b for b in BLOCKS if b.skip]) <= 24


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.skip is None], ids=lambda b: f"README.md:{b.line}")
def test_readme_block_runs_as_written(block: Block, workspace: Path) -> None:
    for cmd in block.commands():
        done = _run(cmd, block.lang, workspace)
        assert done.returncode == cmd.expected_exit, (
            f"README.md:{block.line}: `{cmd.text[:200]}` exited {done.returncode} "
            f"(expected {cmd.expected_exit})\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
        )
