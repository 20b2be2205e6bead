"""Secrets out of every text a user or a file may see.

An endpoint's error body can echo the request, Authorization header included; that text then travels
as an error reason into warnings, batch records, logs and the judge cache. Every such text passes
through `redact` first: the configured API keys (registered when settings are built) and anything that
looks like a bearer token or an OpenAI-style key are masked.
"""

from __future__ import annotations

import re
import threading

MASK = "***"

_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=\-]{4,}"),
    re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"),
    re.compile(r"(?i)((?:api[-_]?key|x-api-key|authorization)[\"']?\s*[:=]\s*[\"']?(?:bearer\s+|basic\s+)?)"
               r"(?!bearer\b|basic\b)[^\s\"',;}*]{4,}"),
)
_secrets: set[str] = set()
_lock = threading.Lock()
# Shorter values would mask ordinary words ("none", "test") everywhere.
MIN_SECRET = 6


def register_secret(value: str | None) -> None:
    """Mask `value` in every text passed to `redact` from now on (for the life of the process)."""
    if value and len(value) >= MIN_SECRET:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    if not text:
        return text
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for s in secrets:
        if s in text:
            text = text.replace(s, MASK)
    for p in _PATTERNS:
        text = p.sub(lambda m: (m.group(1) if m.lastindex else "") + MASK, text)
    return text
