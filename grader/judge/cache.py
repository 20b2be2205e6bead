"""Persistent on-disk cache of judge replies (sqlite3), so re-running an eval costs nothing.

The key covers everything that can change a reply: prompt hash, backend, endpoint, model, sampling
parameters, the schema, the rendered messages and the sample index. Only successful, validated replies
are stored; failures are retried on the next run.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from grader.redact import redact


def cache_key(
    *,
    prompt_hash: str,
    backend: str,
    endpoint: str | None,
    model: str,
    params: dict[str, Any],
    messages: list[dict[str, str]],
    schema: dict[str, Any],
    sample_index: int,
) -> str:
    payload = json.dumps(
        {
            "prompt_hash": prompt_hash,
            "backend": backend,
            "endpoint": endpoint,
            "model": model,
            "params": params,
            "messages": messages,
            "schema": schema,
            "sample": sample_index,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class JudgeCache:
    """A key -> JSON table in `path`. Safe across threads; WAL lets parallel processes share it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS judge_cache (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL)"
            )
            self._conn.commit()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM judge_cache WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        # A reply's notes may quote an endpoint's error body: no secret is ever written to disk.
        text = redact(json.dumps(value, ensure_ascii=False))
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO judge_cache (key, value, created) VALUES (?, ?, ?)",
                (key, text, time.time()),
            )
            self._conn.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM judge_cache").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def default_cache_path(cache_dir: Path) -> Path:
    return Path(cache_dir) / "judge.sqlite"
