"""A read-only walk over a libcst tree, in libcst's own order, without rebuilding any node.

`CSTNode.visit` rebuilds every node it passes (each `_visit_and_replace_children` constructs and
validates a new node), and `node.children` does the same to list them: on a large file that costs
more than the parse. The audit never changes a tree, so it walks the fields directly. The order
of each node class's child fields is learned once, from libcst itself (the attribute callbacks of
one `_visit_and_replace_children` call), so the walk meets nodes in exactly the order `visit` does
and calls `on_visit` / `on_leave` just as `visit` would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import libcst as cst


class _FieldRecorder(cst.CSTVisitor):
    """Records the child fields one `_visit_and_replace_children` call visits, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[str] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        return False

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        self.fields.append(attribute)


_FIELDS: dict[type, tuple[str, ...]] = {}


def subclasses_of(*classes: type) -> frozenset[type]:
    """Every class given and every subclass: `type(node) in set` is far cheaper than
    `isinstance` against libcst's abstract bases."""
    out: set[type] = set()
    pending = list(classes)
    while pending:
        cls = pending.pop()
        if cls not in out:
            out.add(cls)
            pending.extend(cls.__subclasses__())
    return frozenset(out)


NODE_CLASSES = subclasses_of(cst.CSTNode)


def _learn(node: cst.CSTNode) -> tuple[str, ...]:
    cls = type(node)
    recorder = _FieldRecorder()
    node._visit_and_replace_children(recorder)  # noqa: SLF001 - the one source of the order
    names = list(dict.fromkeys(recorder.fields))
    # a field visited only when set (an f-string's `format_spec`) goes last, as libcst visits it
    names += [f.name for f in dataclasses.fields(node) if f.name not in names]
    fields = tuple(names)
    _FIELDS[cls] = fields
    return fields


def child_fields(node: cst.CSTNode) -> tuple[str, ...]:
    """The names of `node`'s fields that may hold child nodes, in visiting order."""
    return _FIELDS.get(type(node)) or _learn(node)


def children(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """`node.children` without rebuilding `node`."""
    node_types = NODE_CLASSES
    for name in _FIELDS.get(type(node)) or _learn(node):
        value = getattr(node, name)
        kind = type(value)
        if kind is tuple or kind is list:
            yield from value
        elif kind in node_types:
            yield value


def descendants(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """`node` and every node below it, in visiting order."""
    yield node
    for child in children(node):
        yield from descendants(child)


def walk(
    root: cst.CSTNode,
    on_visit: Callable[[cst.CSTNode], bool],
    on_leave: Callable[[cst.CSTNode], None],
    skip: frozenset[type] = frozenset(),
) -> None:
    """Call `on_visit` and `on_leave` as `root.visit(visitor)` would, reading the tree only.

    Nodes whose type is in `skip` are not handed to the callbacks at all: give only types for which
    `on_visit` returns False and `on_leave` does nothing.
    """
    fields_of = _FIELDS
    node_types = NODE_CLASSES

    def go(node: cst.CSTNode) -> None:
        if on_visit(node):
            for name in fields_of.get(type(node)) or _learn(node):
                value = getattr(node, name)
                kind = type(value)
                if kind is tuple or kind is list:
                    for child in value:
                        if type(child) not in skip:
                            go(child)
                elif kind in node_types and kind not in skip:
                    go(value)
        on_leave(node)

    if type(root) not in skip:
        go(root)
