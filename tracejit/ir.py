"""The IR: abstract values, variables, literals, equations and closed programs.

Plain, immutable-by-convention data. `str(ir)` prints the one stable listing format::

    ir f(a: f64[1000], b: f64[]) -> f64[]
      c: f64[1000] = sin a
      d: f64[1000] = mul c a
      e: f64[]     = reduce_sum[axes=(0,)] d
      f: f64[]     = mul e b
      return f
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import dtypes


class ShapedArray:
    """An abstract value: what tracing knows about an array (shape and dtype, never data).

    `weak_type` marks values that came from Python scalars: like NumPy's Python scalars they
    take the dtype of the array they meet (`f32_array * 2.0` stays float32).
    """

    __slots__ = ("shape", "dtype", "weak_type")

    def __init__(self, shape, dtype, weak_type: bool = False):
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.weak_type = bool(weak_type)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def strip_weak(self) -> ShapedArray:
        return ShapedArray(self.shape, self.dtype) if self.weak_type else self

    def update(self, shape=None, dtype=None) -> ShapedArray:
        return ShapedArray(self.shape if shape is None else shape,
                           self.dtype if dtype is None else dtype)

    def __eq__(self, other) -> bool:
        return (isinstance(other, ShapedArray) and self.shape == other.shape
                and self.dtype == other.dtype)

    def __hash__(self) -> int:
        return hash((self.shape, self.dtype))

    def __str__(self) -> str:
        return f"{dtypes.short_name(self.dtype)}[{','.join(map(str, self.shape))}]"

    __repr__ = __str__


class TapeType:
    """The record a while loop keeps for reverse mode: one row (`row`, a ShapedArray) per
    iteration, as many rows as the loop runs. Only the loop that writes it and the loop
    that replays it see it; it never carries a derivative."""

    __slots__ = ("row",)
    weak_type = False

    def __init__(self, row: ShapedArray):
        self.row = row

    @property
    def dtype(self) -> np.dtype:
        return self.row.dtype

    @property
    def ndim(self) -> int:
        return self.row.ndim + 1

    def strip_weak(self) -> TapeType:
        return self

    def __eq__(self, other) -> bool:
        return isinstance(other, TapeType) and self.row == other.row

    def __hash__(self) -> int:
        return hash(("tape", self.row))

    def __str__(self) -> str:
        return f"{dtypes.short_name(self.dtype)}[?{''.join(',' + str(d) for d in self.row.shape)}]"

    __repr__ = __str__


def aval_of(x) -> ShapedArray:
    """Abstract value of a concrete Python/NumPy value."""
    if isinstance(x, (bool, int, float, complex)) and not isinstance(x, np.generic):
        dtype = np.asarray(x).dtype
        if isinstance(x, int) and not isinstance(x, bool):
            dtype = dtypes.int64
        return ShapedArray((), dtype, weak_type=True)
    arr = np.asarray(x)
    if arr.dtype == object or isinstance(x, (str, bytes)):
        raise TypeError(f"tracejit cannot trace a value of type {type(x).__name__}: expected an "
                        "array, a NumPy scalar or a Python number")
    return ShapedArray(arr.shape, dtypes.check_supported(arr.dtype))


class Var:
    """A variable of the IR, defined once (an input, a constant or an equation output)."""

    __slots__ = ("aval", "count")
    _counter = itertools.count()

    def __init__(self, aval: ShapedArray):
        self.aval = aval
        self.count = next(Var._counter)

    def __repr__(self) -> str:
        return f"Var#{self.count}:{self.aval}"


class Literal:
    """A scalar constant written inline in an equation."""

    __slots__ = ("value", "aval")

    def __init__(self, value, aval: ShapedArray | None = None):
        if aval is None:
            aval = ShapedArray((), np.asarray(value).dtype)
        self.value = np.asarray(value, dtype=aval.dtype)[()]
        self.aval = aval

    def __repr__(self) -> str:
        return format_literal(self)


Atom = Var | Literal


@dataclass(eq=False)
class Eqn:
    """One primitive application: `outs = prim[params] inputs`."""

    prim: Any  # Primitive (kept untyped here to avoid an import cycle)
    inputs: list
    outs: list
    params: dict
    source: str | None = None


@dataclass(eq=False)
class IR:
    """A closed program: typed inputs, constants with their values, equations, outputs."""

    invars: list
    constvars: list
    constvals: list
    eqns: list
    outs: list
    name: str = "f"
    extra: dict = field(default_factory=dict)

    @property
    def in_avals(self) -> list:
        return [v.aval for v in self.invars]

    @property
    def out_avals(self) -> list:
        return [a.aval for a in self.outs]

    def __str__(self) -> str:
        return pretty(self)

    __repr__ = __str__


# -- printing -------------------------------------------------------------------------------

def _names():
    letters = "abcdefghijklmnopqrstuvwxyz"
    for n in itertools.count(1):
        for combo in itertools.product(letters, repeat=n):
            yield "".join(combo)


def var_names(ir: IR) -> dict:
    """The names the printer gives `ir`'s variables: inputs, constants, then equation
    outputs, in order (a, b, ..., z, aa, ab, ...)."""
    fresh = _names()
    names = {}
    for v in ir.invars + ir.constvars + [v for e in ir.eqns for v in e.outs]:
        if v not in names:
            names[v] = next(fresh)
    return names


def format_literal(lit: Literal) -> str:
    v = lit.value
    dtype = lit.aval.dtype
    if dtypes.is_bool(dtype):
        return "True" if v else "False"
    if dtypes.is_float(dtype):
        text = repr(float(v))
    elif dtypes.is_complex(dtype):
        text = repr(complex(v))
    else:
        text = str(int(v))
    if dtype not in (dtypes.float64, dtypes.int64, dtypes.complex128):
        text += ":" + dtypes.short_name(dtype)
    return text


def format_param(value) -> str:
    if isinstance(value, np.dtype):
        return dtypes.short_name(value)
    if isinstance(value, type) and issubclass(value, np.generic):
        return dtypes.short_name(np.dtype(value))
    if isinstance(value, IR):
        return "{...}"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def pretty(ir: IR, indent: int = 0) -> str:
    names: dict[int, str] = {}
    fresh = _names()

    def name(v) -> str:
        if isinstance(v, Literal):
            return format_literal(v)
        if id(v) not in names:
            names[id(v)] = next(fresh)
        return names[id(v)]

    def decl(v) -> str:
        return f"{name(v)}: {v.aval}"

    pad = " " * indent
    ins = ", ".join(decl(v) for v in ir.invars)
    outs = ", ".join(str(a.aval) for a in ir.outs)
    if len(ir.outs) != 1:
        outs = f"({outs})"
    lines = [f"{pad}ir {ir.name}({ins}) -> {outs}"]
    body = []
    for v, val in zip(ir.constvars, ir.constvals):
        body.append((decl(v), f"const {_summarize(val)}", []))
    for eqn in ir.eqns:
        lhs = ", ".join(decl(v) for v in eqn.outs) or "_"
        params = ""
        nested = []
        shown = {}
        for k, val in eqn.params.items():
            if isinstance(val, IR):
                nested.append((k, val))
            elif isinstance(val, (tuple, list)) and val and all(isinstance(x, IR) for x in val):
                nested.extend((f"{k}[{i}]", x) for i, x in enumerate(val))
            else:
                shown[k] = val
        if shown:
            params = "[" + ", ".join(f"{k}={format_param(v)}" for k, v in shown.items()) + "]"
        rhs = f"{eqn.prim.name}{params} " + " ".join(name(a) for a in eqn.inputs)
        body.append((lhs, rhs.rstrip(), nested))
    width = max((len(lhs) for lhs, _, _ in body), default=0)
    for lhs, rhs, nested in body:
        lines.append(f"{pad}  {lhs.ljust(width)} = {rhs}")
        for label, sub in nested:
            lines.append(f"{pad}    {label}:")
            lines.append(pretty(sub, indent + 6))
    ret = ", ".join(name(a) for a in ir.outs)
    lines.append(f"{pad}  return {ret}")
    return "\n".join(lines)


def _summarize(val) -> str:
    arr = np.asarray(val)
    if arr.size <= 6:
        return np.array2string(arr, separator=", ", precision=6).replace("\n", "")
    flat = arr.ravel()
    return f"[{flat[0]:.6g}, {flat[1]:.6g}, ..., {flat[-1]:.6g}]"
