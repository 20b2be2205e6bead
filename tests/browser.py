"""A real browser for tests: headless Chromium driven over the DevTools protocol (websockets' sync client).

`chromium_path()` finds the Debian `chromium` binary and installs the package when it is missing (CI runs as
root with apt); `Browser(html_file)` opens a page at a given viewport, evaluates JavaScript in it and takes
screenshots. No mock: the page is laid out, its images decoded and measured by Chromium itself.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--remote-debugging-port=0",
)


def chromium_path() -> str:
    """The chromium binary; installs Debian's `chromium` package when it is absent (needs root and apt)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
        if done.returncode != 0:
            raise RuntimeError(f"cannot install chromium ({' '.join(cmd)}): {done.stderr[-2000:]}")
    found = shutil.which("chromium")
    if not found:
        raise RuntimeError("apt-get installed chromium but no chromium binary is on PATH")
    return found


class Browser:
    """One headless Chromium showing one local HTML file at width x height CSS pixels."""

    def __init__(self, page: Path, width: int = 1400, height: int = 900, timeout: float = 60.0) -> None:
        self.page, self.width, self.height, self.timeout = page, width, height, timeout
        self._ids = itertools.count(1)
        self._events: list[dict[str, Any]] = []

    def __enter__(self) -> Browser:
        from websockets.sync.client import connect

        self._profile = tempfile.TemporaryDirectory(prefix="grader-chromium-", ignore_cleanup_errors=True)
        log = Path(self._profile.name) / "chromium.log"
        self._log = log.open("wb")
        self._proc = subprocess.Popen(
            [chromium_path(), *FLAGS, f"--user-data-dir={self._profile.name}",
             f"--window-size={self.width},{self.height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=self._log,
        )
        try:
            port = self._devtools_port()
            targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
            ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page")
            self._stack = contextlib.ExitStack()
            self._ws = self._stack.enter_context(connect(ws_url, max_size=None, open_timeout=self.timeout))
            self.call("Emulation.setDeviceMetricsOverride",
                      width=self.width, height=self.height, deviceScaleFactor=1, mobile=False)
            self.call("Page.enable")
            self.call("Page.navigate", url=self.page.resolve().as_uri())
            self._wait_event("Page.loadEventFired")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        stack = getattr(self, "_stack", None)
        if stack is not None:
            stack.close()
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._log.close()
        # Chromium's helper processes (crash handler, GPU) can still be writing into the profile for a moment
        # after the browser exits: retry, then leave the folder rather than fail a test that already passed.
        for _ in range(20):
            try:
                shutil.rmtree(self._profile.name)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)
        self._profile.cleanup()

    def _devtools_port(self) -> int:
        # With --remote-debugging-port=0 Chromium picks a free port and writes it into the profile folder.
        marker = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self._proc.returncode}: {self._log_tail()}")
            if marker.is_file():
                first = marker.read_text().split("\n", 1)[0].strip()
                if first.isdigit():
                    return int(first)
            time.sleep(0.1)
        raise TimeoutError(f"chromium did not open its DevTools port: {self._log_tail()}")

    def _log_tail(self) -> str:
        self._log.flush()
        return (Path(self._profile.name) / "chromium.log").read_text(errors="replace")[-2000:]

    def _recv(self) -> dict[str, Any]:
        return json.loads(self._ws.recv(timeout=self.timeout))

    def _wait_event(self, method: str) -> dict[str, Any]:
        for i, event in enumerate(self._events):
            if event.get("method") == method:
                return self._events.pop(i)
        while True:
            msg = self._recv()
            if msg.get("method") == method:
                return msg

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result; events arriving meanwhile are kept for _wait_event
        (the page's load event may come before the reply to Page.navigate)."""
        msg_id = next(self._ids)
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = self._recv()
            if "method" in msg:
                self._events.append(msg)
                continue
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript error: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> Path:
        """The viewport (the first screen) as a PNG."""
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path
