"""Text a user hands us: read with a size cap before decoding, strictly UTF-8, never a lone surrogate.

Python lets broken text through in three places: argv bytes that are not UTF-8 arrive as surrogate
escapes (U+DC80..U+DCFF), JSON's ``"\\ud800"`` escape decodes to a lone surrogate, and a file read
without a cap can be endless (``/dev/zero``). Any of them would crash later, far from the input (the
tokenizer, a UTF-8 write of the output). Here each becomes a message that names the input.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

# Generous for config files, eval sets and answer files; a cap, not an expected size.
DEFAULT_MAX_BYTES = 256 * 1024 * 1024

_SURROGATE = re.compile("[\ud800-\udfff]")


class TextProblem(ValueError):
    """Why a piece of input is not usable text (the caller adds where it came from)."""


def read_capped(path: str | Path, limit: int = DEFAULT_MAX_BYTES) -> bytes:
    """At most `limit` bytes of `path`; TextProblem when there are more (a device or a runaway file)."""
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise TextProblem(f"larger than {limit:,} bytes: refusing to read it")
    return data


def decode_strict(raw: bytes) -> str:
    """UTF-8 text (a leading byte-order mark dropped), or TextProblem naming the first bad byte."""
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        raise TextProblem(f"not UTF-8 (bad byte 0x{raw[e.start]:02x} at byte {e.start})") from e


def lone_surrogate(text: str, *, from_bytes: bool = False) -> str | None:
    """A description of the first lone surrogate in `text`, or None when it is clean text.

    `from_bytes`: `text` came from bytes decoded with surrogate escapes (argv, file names), so
    U+DC80..U+DCFF stand for undecodable bytes and are reported as such."""
    m = _SURROGATE.search(text)
    if m is None:
        return None
    code = ord(m.group())
    if from_bytes and 0xDC80 <= code <= 0xDCFF:
        # How Python carries an undecodable byte of a command-line argument or a file name.
        return f"not UTF-8 (bad byte 0x{code - 0xDC00:02x} at character {m.start()})"
    return f"holds a lone surrogate \\u{code:04x} at character {m.start()}, which is not text"


def check_text(text: str) -> str:
    """A command-line argument, or TextProblem when it holds an undecodable byte or a lone surrogate."""
    problem = lone_surrogate(text, from_bytes=True)
    if problem is not None:
        raise TextProblem(problem)
    return text


def printable(text: str) -> str:
    """`text` with lone surrogates replaced (U+FFFD), so it can be written as UTF-8 in an error record."""
    return _SURROGATE.sub("\ufffd", text)


# ------------------------------------------------------------------------------------ JSON error wording

_KEY_BEFORE = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:\s*$')


def _string_start(text: str, pos: int) -> int:
    """Where the JSON string containing position `pos` opens (the last unescaped quote before it)."""
    i = pos - 1
    while i >= 0:
        if text[i] == '"':
            backslashes = 0
            j = i - 1
            while j >= 0 and text[j] == "\\":
                backslashes += 1
                j -= 1
            if backslashes % 2 == 0:
                return i
        i -= 1
    return max(pos, 0)


def _which(text: str, start: int) -> str:
    m = _KEY_BEFORE.search(text[:start])
    return f"the {m.group(1)} text" if m else "a text value"


def json_error_message(e: json.JSONDecodeError, text: str) -> str:
    """What is wrong with one line of JSON, in a user's words, with the column (1-based) where it is."""
    msg, pos = e.msg, e.pos
    col = e.colno
    if msg.startswith("Unterminated string"):
        return f"{_which(text, pos)} is not closed (unterminated string starting at column {col})"
    if msg.startswith("Invalid control character"):
        start = _string_start(text, pos)
        if not text[pos:].strip():
            # The line ends inside a string: its closing quote is missing.
            return f"{_which(text, start)} is not closed (unterminated string starting at column {start + 1})"
        return (f"{_which(text, start)} holds a raw control character at column {col}; "
                "write a tab as \\t and a line break as \\n")
    if msg.startswith("Invalid \\escape") or msg.startswith("Invalid \\uXXXX"):
        return f"invalid backslash escape at column {col} (a literal backslash is written \\\\)"
    if msg.startswith("Expecting property name"):
        return f"expected a field name in double quotes at column {col} (a trailing comma?)"
    if msg.startswith("Expecting ',' delimiter"):
        return f"expected a comma or a closing bracket at column {col}"
    if msg.startswith("Expecting ':' delimiter"):
        return f"expected ':' after the field name at column {col}"
    if msg.startswith("Extra data"):
        return f"more than one JSON value on the line (extra text at column {col})"
    if msg.startswith("Expecting value"):
        if not text[pos:].strip():
            return f"the line ends where a value should follow (column {col}): is it cut off?"
        return f"not a JSON value at column {col} (text must be in double quotes)"
    return f"{msg} (column {col})"
