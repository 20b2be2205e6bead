"""A YAML loader for files people write: no aliases, no infinite or NaN numbers.

Aliases are refused while composing, before anything is expanded: a 600-byte "billion laughs" file
is nine nested aliases whose expansion (by any code that walks the data) costs minutes of CPU, and
nothing in a rubric or a config needs them. `.inf` and `.nan` are refused where they are read, with
their line, since a score or weight of infinity is never meant and cannot be written back as JSON.
"""

from __future__ import annotations

import math
from typing import Any

import yaml


class SafeLoader(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"YAML aliases (*{event.anchor}) are not accepted; write the value out",
                event.start_mark,
            )
        return super().compose_node(parent, index)

    def construct_finite_float(self, node: yaml.ScalarNode) -> float:
        value = self.construct_yaml_float(node)
        if not math.isfinite(value):
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a finite number", node.start_mark
            )
        return value


SafeLoader.add_constructor("tag:yaml.org,2002:float", SafeLoader.construct_finite_float)


def safe_load(text: str) -> Any:
    loader = SafeLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
