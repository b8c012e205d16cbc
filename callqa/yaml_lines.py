"""YAML documents with the line of every key and list item, read under limits (rubrics and the config file).

PyYAML first builds a graph of nodes, then Python objects from it. The limits apply to the graph, before any
object is made:

- nesting deeper than ``MAX_DEPTH`` is refused while composing: PyYAML's composer recurses, so a deep document
  would otherwise end in a RecursionError;
- the document may expand to at most ``MAX_NODES`` nodes, an alias counted every time it is used: an alias bomb
  of a few KB names billions of nodes, which the line walk and validation would each visit;
- an alias inside the node it names (a recursive document) is refused.

The file's size is limited by the caller (``inputfiles.read_limited``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_DEPTH = 64
MAX_NODES = 100_000

Loc = tuple  # a location inside the document: ("sections", 0, "criteria", 2, "window")


class YamlError(ValueError):
    """The text is not a YAML document within the limits; ``line`` is 1-based, ``problem`` one line, ``kind``
    what failed: ``yaml syntax``, ``yaml limits`` or ``yaml value``."""

    def __init__(self, line: int, problem: str, kind: str = "yaml syntax"):
        self.line, self.problem, self.kind = line, problem, kind
        super().__init__(f"line {line}: ({kind}) {problem}")


class YamlDocument(NamedTuple):
    data: Any
    lines: dict[Loc, int]  # path -> 1-based line of the key or item
    duplicates: tuple[tuple[Loc, int], ...]  # keys given twice in one mapping (YAML keeps the last): path, line

    def line_of(self, path: Loc) -> int:
        """The line of ``path``, else of its nearest ancestor that is in the document."""
        path = tuple(path)
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path, 1)


def format_path(path: Loc, root: str) -> str:
    """``("sections", 0, "id")`` -> ``sections[0].id``; the empty path is ``root``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or root


class _LimitedLoader(yaml.SafeLoader):
    def __init__(self, text: str):
        super().__init__(text)
        self._depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise YamlError(self.peek_event().start_mark.line + 1, f"nested deeper than {MAX_DEPTH} levels",
                                "yaml limits")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [child for pair in node.value for child in pair]
    return []


def _check_expansion(root: Node) -> None:
    """Count the nodes the document expands to, each shared (aliased) node once per use, without expanding."""
    measured: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, expanded height)
    on_path: set[int] = set()

    def measure(node: Node, depth: int) -> tuple[int, int]:
        key = id(node)
        if key in on_path:
            raise YamlError(_line(node), "an alias is used inside the node it names (a recursive document)",
                            "yaml limits")
        if key not in measured:
            on_path.add(key)
            size, height = 1, 1
            for child in _children(node):
                child_size, child_height = measure(child, depth + 1)
                size, height = size + child_size, max(height, child_height + 1)
                if size > MAX_NODES:
                    raise YamlError(_line(node), f"the document expands to more than {MAX_NODES} values "
                                                 "(aliases counted at every use)", "yaml limits")
            on_path.discard(key)
            measured[key] = (size, height)
        if depth + measured[key][1] > MAX_DEPTH:
            raise YamlError(_line(node), f"nested deeper than {MAX_DEPTH} levels once aliases are expanded",
                            "yaml limits")
        return measured[key]

    measure(root, 0)


def _node_lines(node: Node, path: Loc, lines: dict[Loc, int], duplicates: list[tuple[Loc, int]]) -> None:
    lines.setdefault(path, _line(node))
    if isinstance(node, MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                continue  # a complex key: refused by the constructor already
            key = key_node.value
            if key in seen:
                duplicates.append(((*path, key), _line(key_node)))
            seen.add(key)
            lines[(*path, key)] = _line(key_node)
            _node_lines(value_node, (*path, key), lines, duplicates)
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            _node_lines(item, (*path, i), lines, duplicates)


def _marked(exc: yaml.MarkedYAMLError) -> YamlError:
    mark = exc.problem_mark or exc.context_mark
    context = (f" ({exc.context} started on line {exc.context_mark.line + 1})"
               if exc.context and exc.context_mark else "")
    return YamlError(mark.line + 1 if mark else 1, f"{exc.problem or exc}{context}")


def parse_yaml(text: str) -> YamlDocument:
    """One YAML document with its lines; raises YamlError for bad syntax and documents over the limits."""
    loader = None
    try:
        loader = _LimitedLoader(text)
        node = loader.get_single_node()
        if node is None:
            return YamlDocument(None, {}, ())
        _check_expansion(node)
        data = loader.construct_document(node)
    except YamlError:
        raise
    except yaml.MarkedYAMLError as exc:
        raise _marked(exc) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, e.g. NUL
        raise YamlError(text.count("\n", 0, exc.position) + 1, f"character {exc.character!r} is not allowed "
                                                               "in YAML") from None
    except Exception as exc:
        # The constructor's own conversions: a date 2024-02-30 (ValueError), an integer of 5000 digits, and
        # `!!timestamp ''`, on which PyYAML 6 raises AttributeError.
        raise YamlError(1, f"a value cannot be read: {' '.join(str(exc).split())[:200]}", "yaml value") from None
    finally:
        if loader is not None:
            loader.dispose()
    lines: dict[Loc, int] = {}
    duplicates: list[tuple[Loc, int]] = []
    _node_lines(node, (), lines, duplicates)
    return YamlDocument(data, lines, tuple(duplicates))
