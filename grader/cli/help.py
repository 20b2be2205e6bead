"""How `grader ... --help` reads: plain click help wrapped to the terminal, one metavar style for every command.

Typer's own rendering shows a Python type on every option (`<str>`, `<list[Path]>`, `<bool>` on flags) and
each argument under its Python name (`{dataset}`). The root group tidies each command as it is looked up:
options get click's usual TEXT / PATH / INTEGER / NUMBER, arguments are upper-cased (INPUT), and the
command list shows each command's whole first sentence, wrapped, instead of cutting it mid-sentence.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup

# Typer's type label (or click's type name) -> the metavar to show.
_METAVARS = {"path": "PATH", "str": "TEXT", "text": "TEXT", "int": "INTEGER", "integer": "INTEGER",
             "float": "NUMBER", "bool": "BOOLEAN", "boolean": "BOOLEAN"}


def _first_sentence(text: str) -> str:
    first = " ".join(text.strip().split("\n\n")[0].split())
    end = first.find(". ")
    return first if end < 0 else first[: end + 1]


def _metavar(param: Any) -> str:
    desc = getattr(param, "type_descriptor", None)
    if desc is not None and desc.is_choice:
        return "[" + "|".join(str(getattr(c, "value", c)) for c in desc.choices or ()) + "]"
    if desc is not None:  # typer >= 0.2x: "<str>", "<int range>", "<list[Path]>"
        label = param.display_type(None).strip("<>")
    else:
        label = getattr(getattr(param, "type", None), "name", "")
    label = label.removeprefix("list[").removesuffix("]").removesuffix(" range").lower()
    if "|" in label:
        return f"[{label}]"
    return _METAVARS.get(label, "VALUE")


def tidy(command: Any) -> Any:
    """Set metavars and the short help of `command` (and of a group's sub-commands); idempotent."""
    if getattr(command, "_grader_tidy", False):
        return command
    command._grader_tidy = True
    if command.help and not command.short_help:
        command.short_help = _first_sentence(command.help)
    for param in command.params:
        if param.param_type_name == "argument":
            name = (param.metavar or param.name or "ARG").upper()
            param.metavar = name
            usage = name if param.required else f"[{name}]"
            usage += "..." if param.nargs != 1 else ""
            # Instance attributes: typer would print `{NAME} <path>`; click's style is NAME.
            param.display_type_rich = lambda ctx=None: None
            param._usage_display_name = lambda usage=usage: usage
        elif param.param_type_name == "option" and not param.is_flag and not param.count and param.metavar is None:
            param.metavar = _metavar(param)
    for sub in getattr(command, "commands", {}).values():
        tidy(sub)
    return command


class GraderGroup(TyperGroup):
    """The root `grader` group: every command it hands out is tidied (see the module docstring)."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        found = super().get_command(ctx, cmd_name)
        return tidy(found) if found is not None else None
