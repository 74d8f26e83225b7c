"""Pytrees: nested tuples, lists, dicts and registered classes, with arrays at the leaves.

Transforms flatten their arguments and results to lists of leaves plus a `PyTreeDef`, work
on the flat lists, and unflatten at the end (so gradients mirror the argument structure).
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np


class _NodeType(NamedTuple):
    to_iterable: Callable  # node -> (children, aux_data)
    from_iterable: Callable  # (aux_data, children) -> node


_registry: dict[type, _NodeType] = {}


def register_pytree_node(nodetype: type, flatten_func: Callable,
                         unflatten_func: Callable) -> None:
    """Register a class as a pytree node.

    `flatten_func(node) -> (children, aux_data)`; `unflatten_func(aux_data, children) -> node`.
    `aux_data` must be hashable: it is part of the cache key of traced functions.
    """
    if nodetype in _registry:
        raise ValueError(f"{nodetype.__name__} is already registered as a pytree node")
    _registry[nodetype] = _NodeType(flatten_func, unflatten_func)


register_pytree_node(tuple, lambda t: (list(t), None), lambda _, c: tuple(c))
register_pytree_node(list, lambda x: (list(x), None), lambda _, c: list(c))
register_pytree_node(
    dict,
    lambda d: ([d[k] for k in sorted(d)], tuple(sorted(d))),
    lambda keys, c: dict(zip(keys, c)))
register_pytree_node(
    OrderedDict,
    lambda d: (list(d.values()), tuple(d.keys())),
    lambda keys, c: OrderedDict(zip(keys, c)))
register_pytree_node(type(None), lambda _: ([], None), lambda _, c: None)


def _node_type(x) -> type | None:
    t = type(x)
    if t in _registry:
        return t
    if isinstance(x, tuple) and hasattr(x, "_fields"):  # namedtuple
        return t
    return None


class PyTreeDef:
    """The structure of a pytree with its leaves removed; hashable and comparable."""

    __slots__ = ("node_type", "aux", "children", "num_leaves", "_hash")

    def __init__(self, node_type, aux, children: tuple):
        self.node_type = node_type
        self.aux = aux
        self.children = children
        self.num_leaves = 1 if node_type is None else sum(c.num_leaves for c in children)
        self._hash = None  # computed on first use (aux may be unhashable: errors then)

    def _key(self):
        return (self.node_type, self.aux, self.children)

    def __eq__(self, other) -> bool:
        if self is other:
            return True
        return isinstance(other, PyTreeDef) and hash(self) == hash(other) and \
            self._key() == other._key()

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(self._key())
        return self._hash

    def __repr__(self) -> str:
        if self.node_type is None:
            return "*"
        inner = ", ".join(map(repr, self.children))
        name = self.node_type.__name__
        if self.node_type is tuple:
            return f"({inner}{',' if len(self.children) == 1 else ''})"
        if self.node_type is list:
            return f"[{inner}]"
        if self.node_type is dict:
            return "{" + ", ".join(f"{k!r}: {c!r}" for k, c in zip(self.aux, self.children)) \
                + "}"
        if self.node_type is type(None):
            return "None"
        return f"{name}({inner})"


_LEAF = PyTreeDef(None, None, ())
_LEAF_TYPES = frozenset({np.ndarray, float, int, bool, np.float64, np.float32, np.int64})


def _flatten(x, leaves: list, is_leaf) -> PyTreeDef:
    if is_leaf is not None and is_leaf(x):
        leaves.append(x)
        return _LEAF
    if type(x) in _LEAF_TYPES:  # the common leaves, without a registry lookup
        leaves.append(x)
        return _LEAF
    t = _node_type(x)
    if t is None:
        leaves.append(x)
        return _LEAF
    if t in _registry:
        children, aux = _registry[t].to_iterable(x)
    else:  # namedtuple
        children, aux = list(x), None
    return PyTreeDef(t, aux, tuple(_flatten(c, leaves, is_leaf) for c in children))


def tree_flatten(tree, is_leaf: Callable | None = None) -> tuple[list, PyTreeDef]:
    """Leaves in a fixed order (dict keys sorted) and the structure to rebuild the tree."""
    leaves: list = []
    treedef = _flatten(tree, leaves, is_leaf)
    return leaves, treedef


def _unflatten(treedef: PyTreeDef, it):
    if treedef.node_type is None:
        return next(it)
    children = [_unflatten(c, it) for c in treedef.children]
    t = treedef.node_type
    if t in _registry:
        return _registry[t].from_iterable(treedef.aux, children)
    return t(*children)  # namedtuple


def tree_unflatten(treedef: PyTreeDef, leaves) -> Any:
    """Rebuild a tree of `treedef`'s structure from its leaves."""
    leaves = list(leaves)
    if len(leaves) != treedef.num_leaves:
        raise ValueError(f"tree structure {treedef} has {treedef.num_leaves} leaves, "
                         f"got {len(leaves)}")
    return _unflatten(treedef, iter(leaves))


def tree_leaves(tree, is_leaf: Callable | None = None) -> list:
    return tree_flatten(tree, is_leaf)[0]


def tree_structure(tree, is_leaf: Callable | None = None) -> PyTreeDef:
    return tree_flatten(tree, is_leaf)[1]


def tree_map(f: Callable, tree, *rest, is_leaf: Callable | None = None):
    """Apply `f` leafwise; `rest` are trees of the same structure as `tree`."""
    leaves, treedef = tree_flatten(tree, is_leaf)
    others = []
    for r in rest:
        r_leaves, r_def = tree_flatten(r, is_leaf)
        if r_def != treedef:
            raise ValueError(f"tree_map: structures differ: {treedef} and {r_def}")
        others.append(r_leaves)
    return tree_unflatten(treedef, [f(*xs) for xs in zip(leaves, *others)])


__all__ = ["PyTreeDef", "register_pytree_node", "tree_flatten", "tree_unflatten",
           "tree_leaves", "tree_structure", "tree_map", "namedtuple"]
