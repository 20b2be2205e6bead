"""A real two-node Ray cluster on this machine for the tests: `ray start --head` and `ray start --address`.

Each node has one CPU, a small object store and no dashboard. Token authentication (Ray's default for
new clusters) uses a token file of the cluster's own, so nothing is read from or written to ~/.ray. The
cluster's processes are found by its private temp folder and ended by pid, with their children: no
`ray stop`, which would end every Ray on the machine.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from grader.judge.local_server import free_port

START_TIMEOUT_S = 180


class RayCluster:
    def __init__(self) -> None:
        # Short: Ray puts unix sockets under it, and a socket path is limited to 107 bytes.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="rg-", dir="/tmp"))
        self.token = self.temp_dir / "token"
        self.token.write_text(secrets.token_hex(32))
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(self.token),
            # The workers import this checkout's grader, as the test process does.
            "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                           os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
            "RAY_USAGE_STATS_ENABLED": "0",
        }
        self.env.pop("RAY_ADDRESS", None)

    def _ray(self, *args: str) -> None:
        ray_bin = str(Path(sys.executable).with_name("ray"))
        common = ["--num-cpus", "1", "--object-store-memory", str(100 * 2**20), "--disable-usage-stats",
                  "--node-ip-address", "127.0.0.1", "--temp-dir", str(self.temp_dir)]
        p = subprocess.run([ray_bin, "start", *args, *common], env=self.env, capture_output=True, text=True,
                           timeout=START_TIMEOUT_S)
        if p.returncode != 0:
            raise RuntimeError(f"ray start {' '.join(args)} failed: {p.stderr[-3000:]}")

    def start(self) -> RayCluster:
        try:
            self._ray("--head", "--port", str(self.port), "--include-dashboard", "false")
            self._ray("--address", self.address)
        except BaseException:
            self.stop()
            raise
        return self

    def processes(self) -> list[psutil.Process]:
        """This cluster's processes: those naming its temp folder, and their children."""
        mine: dict[int, psutil.Process] = {}
        for p in psutil.process_iter(["pid", "cmdline"]):
            with contextlib.suppress(psutil.Error):
                if any(str(self.temp_dir) in a for a in (p.info["cmdline"] or [])):
                    mine[p.pid] = p
                    for c in p.children(recursive=True):
                        mine[c.pid] = c
        return list(mine.values())

    def stop(self) -> None:
        procs = self.processes()
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.terminate()
        _, alive = psutil.wait_procs(procs, timeout=10)
        for p in alive:
            with contextlib.suppress(psutil.Error):
                p.kill()
        psutil.wait_procs(alive, timeout=10)
        subprocess.run(["rm", "-rf", str(self.temp_dir)], check=False)

    def __enter__(self) -> RayCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)
