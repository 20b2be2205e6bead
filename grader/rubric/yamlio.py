"""YAML reading with line numbers and readable YAML writing, for rubric and bank files.

Reading keeps the composed node tree so any error - a parse error, a duplicate key, a pydantic
validation error deep inside ``criteria[2].weight`` - can name the file line it comes from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from grader.errors import InputError
from grader.textio import TextProblem, read_capped
from grader.yamlsafe import SafeLoader


@dataclass
class YamlDoc:
    data: Any
    node: yaml.Node | None


def decode_utf8(raw: bytes, path: Path | str) -> str:
    """UTF-8 text, or an InputError naming the line of the first bad byte."""
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")  # spreadsheets save CSV with a byte-order mark
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise InputError(f"not UTF-8 (bad byte 0x{raw[e.start]:02x} at offset {e.start})", file=path, line=line) from e


# A rubric or bank file is text a person edits; anything bigger is a mistake (or a device) to refuse early.
MAX_YAML_BYTES = 64 * 1024 * 1024


def read_text(path: Path) -> str:
    try:
        raw = read_capped(path, MAX_YAML_BYTES)
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", file=path) from e
    except TextProblem as e:
        raise InputError(str(e), file=path) from e
    return decode_utf8(raw, path)


def _duplicate_keys(node: yaml.Node | None, path: Path | str) -> list[InputError]:
    problems: list[InputError] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                line = key.start_mark.line + 1
                if key.value in seen:
                    problems.append(
                        InputError(
                            f"duplicate key (first at line {seen[key.value]})", file=path, line=line, field=key.value
                        )
                    )
                else:
                    seen[key.value] = line
            problems.extend(_duplicate_keys(value, path))
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            problems.extend(_duplicate_keys(item, path))
    return problems


def parse_yaml(text: str, path: Path | str) -> tuple[YamlDoc, list[InputError]]:
    """Parse one YAML document; raises InputError on syntax errors, returns duplicate-key problems.

    Aliases and non-finite numbers are refused (see grader.yamlsafe) before the tree is walked."""
    loader = SafeLoader(text)
    try:
        # One parse gives both the node tree (for line numbers) and the data built from it.
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise InputError(f"bad YAML: {problem}", file=path, line=line) from e
    finally:
        loader.dispose()
    return YamlDoc(data, node), _duplicate_keys(node, path)


def line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The line (1-based) of the value at ``loc`` in the composed tree, or of its nearest existing parent."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    child = value
                    line = key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


# --- writing ---------------------------------------------------------------------------------------------


LONG_TEXT = 80


class _ReadableDumper(yaml.SafeDumper):
    """Block scalars for multi-line text, plain style elsewhere, lists indented under their key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value and not any(line != line.rstrip() for line in value.splitlines()):
        # (Block scalars cannot hold trailing spaces; such text stays quoted, so it loads back exactly.)
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    if len(value) > LONG_TEXT and value == value.strip() and "  " not in value:
        # Long one-paragraph text folds over lines (">-") instead of becoming a quoted wall.
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=">")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


class FlowList(list):
    """A short list of words, written on one line: keywords: [BERT, bidirectional]."""


def _flow_list_representer(dumper: yaml.SafeDumper, value: FlowList) -> yaml.SequenceNode:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", list(value), flow_style=True)


_ReadableDumper.add_representer(str, _str_representer)
_ReadableDumper.add_representer(FlowList, _flow_list_representer)


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_ReadableDumper, sort_keys=False, allow_unicode=True, width=100)
