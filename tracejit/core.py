"""Primitives, tracers and the builder that records equations; binding and IR evaluation.

There is one kind of tracer: a handle on an IR variable being recorded by a `Builder`.
Builders nest (each has a `level`); binding a primitive records into the innermost builder
among its arguments, or runs the NumPy implementation when no argument is traced. A tracer of
an enclosing builder used inside a nested trace is *captured*: it becomes an extra input of the
nested IR. Every transform is an IR -> IR pass built from these pieces.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import numpy as np

from . import dtypes
from .errors import EscapedTracerError, ShapeError, concretization_error, user_location
from .ir import IR, Eqn, Literal, ShapedArray, Var, aval_of


class Primitive:
    """A named operation. Its rules live in per-transform tables keyed by the primitive."""

    def __init__(self, name: str, multiple_results: bool = False):
        self.name = name
        self.multiple_results = multiple_results

    def bind(self, *args, **params):
        return bind(self, *args, **params)

    def __repr__(self) -> str:
        return self.name


# Rule tables owned by the core: shape/dtype rules and NumPy implementations.
abstract_eval_rules: dict[Primitive, Callable] = {}
impl_rules: dict[Primitive, Callable] = {}


def abstract_eval(prim: Primitive, *avals: ShapedArray, **params) -> list[ShapedArray]:
    out = abstract_eval_rules[prim](*avals, **params)
    return list(out) if prim.multiple_results else [out]


# -- tracers -------------------------------------------------------------------------------

class Tracer:
    """A traced array: known shape and dtype, value known only when the program runs.

    NumPy operators and methods are attached by `tracejit.numpy`.
    """

    __slots__ = ("builder", "variable")
    __array_priority__ = 1000
    __hash__ = None  # like NumPy arrays: unhashable

    def __init__(self, builder: Builder, var: Var):
        self.builder = builder
        self.variable = var

    @property
    def aval(self) -> ShapedArray:
        return self.variable.aval

    @property
    def shape(self) -> tuple:
        return self.variable.aval.shape

    @property
    def dtype(self) -> np.dtype:
        return self.variable.aval.dtype

    @property
    def ndim(self) -> int:
        return self.variable.aval.ndim

    @property
    def size(self) -> int:
        return self.variable.aval.size

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of unsized object (a 0-d traced array)")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d traced array")
        return (self[i] for i in range(self.shape[0]))

    def __bool__(self):
        raise concretization_error(self.aval, "bool (e.g. in `if`, `while`, `and`, `or`)")

    def __float__(self):
        raise concretization_error(self.aval, "float")

    def __int__(self):
        raise concretization_error(self.aval, "int")

    def __index__(self):
        raise concretization_error(self.aval, "int (as an index)")

    def __complex__(self):
        raise concretization_error(self.aval, "complex")

    def __array__(self, dtype=None, copy=None):
        raise concretization_error(self.aval, "NumPy array (np.asarray)")

    def item(self):
        raise concretization_error(self.aval, "number (.item())")

    def tolist(self):
        raise concretization_error(self.aval, "list (.tolist())")

    def __repr__(self) -> str:
        return f"Traced<{self.aval}>"


def is_traced(x) -> bool:
    return isinstance(x, Tracer)


# -- builders ------------------------------------------------------------------------------

_builders: list[Builder] = []


class Builder:
    """Records equations for one trace; becomes an `IR` with `finish`.

    `stage_all`: record even operations whose inputs are all concrete. Transforms set it
    (their IRs should contain, e.g., the zeros they create); user tracing leaves it off so
    that plain NumPy arithmetic on constants happens at trace time, as NumPy would.
    """

    def __init__(self, name: str = "f", stage_all: bool = False):
        self.level = len(_builders) + 1
        self.name = name
        self.stage_all = stage_all
        self.invars: list[Var] = []
        self.eqns: list[Eqn] = []
        self.constvars: list[Var] = []
        self.constvals: list = []
        self._const_index: dict[int, Var] = {}
        self._const_keep: list = []
        self.captured: list[Tracer] = []
        self.captured_vars: list[Var] = []
        self._capture_index: dict[int, Var] = {}
        self.active = True

    def new_input(self, aval: ShapedArray) -> Tracer:
        var = Var(aval)
        self.invars.append(var)
        return Tracer(self, var)

    def to_atom(self, x):
        if isinstance(x, Tracer):
            if x.builder is self:
                return x.variable
            return self._capture(x)
        if isinstance(x, (Var, Literal)):
            return x
        if isinstance(x, (bool, int, float, complex)) and not isinstance(x, np.generic):
            return Literal(x, aval_of(x).strip_weak())
        arr = np.asarray(x)
        if arr.ndim == 0:
            return Literal(arr[()], ShapedArray((), dtypes.check_supported(arr.dtype)))
        var = self._const_index.get(id(x))
        if var is None:
            dtypes.check_supported(arr.dtype)
            var = self._structured_constant(arr)
            if var is None:
                var = Var(ShapedArray(arr.shape, arr.dtype))
                self.constvars.append(var)
                self.constvals.append(arr)
            self._const_index[id(x)] = var
            self._const_keep.append(x)  # keeps id(x) from naming another array later
        return var

    def _structured_constant(self, arr: np.ndarray) -> Var | None:
        """A constant that is one value everywhere, or integers counting along one axis
        (`np.arange(n)`, `np.full`, `np.ones` made while tracing), becomes equations
        (`broadcast_in_dim` of a literal, `iota`) instead of an array the program carries."""
        from .primitives import elementwise as ew
        from .primitives import structural as st

        pattern = constant_pattern(arr)
        if pattern is None:
            return None
        dtype = arr.dtype
        if pattern[0] == "fill":
            lit = Literal(pattern[1], ShapedArray((), dtype))
            (out,) = self.emit(st.broadcast_in_dim_p, [lit],
                               {"shape": arr.shape, "broadcast_dimensions": ()})
            return out.variable
        _, dim, start, step = pattern
        (out,) = self.emit(st.iota_p, [], {"dtype": dtype, "shape": arr.shape,
                                            "dimension": dim})
        if step != 1:
            (out,) = self.emit(ew.mul_p, [out.variable, Literal(step, ShapedArray((), dtype))],
                               {})
        if start != 0:
            (out,) = self.emit(ew.add_p, [out.variable, Literal(start, ShapedArray((), dtype))],
                               {})
        return out.variable

    def _capture(self, t: Tracer) -> Var:
        check_live(t)
        if t.builder.level > self.level:
            raise EscapedTracerError(
                f"A traced value {t.aval} from an inner trace was used in an outer one at "
                f"{user_location()}")
        var = self._capture_index.get(id(t))
        if var is None:
            var = Var(t.aval)
            self.captured.append(t)
            self.captured_vars.append(var)
            self._capture_index[id(t)] = var
        return var

    def emit(self, prim: Primitive, args: Sequence, params: dict) -> list[Tracer]:
        atoms = [self.to_atom(a) for a in args]
        try:
            out_avals = abstract_eval(prim, *[a.aval for a in atoms], **params)
        except (ShapeError, TypeError, ValueError) as e:
            if getattr(e, "_tracejit_located", False):
                raise
            err = type(e)(f"{e}\n  in `{prim.name}` at {user_location()}")
            err._tracejit_located = True
            raise err from None
        outs = [Var(a) for a in out_avals]
        self.eqns.append(Eqn(prim, atoms, outs, params))
        return [Tracer(self, v) for v in outs]

    def finish(self, outs: Sequence) -> tuple[IR, list[Tracer]]:
        out_atoms = [self.to_atom(o) for o in outs]
        self.active = False
        ir = IR(self.invars + self.captured_vars, self.constvars, self.constvals, self.eqns,
                out_atoms, self.name)
        return ir, self.captured


def constant_pattern(arr: np.ndarray) -> tuple | None:
    """("fill", value) if every element of `arr` is one (non-NaN) value; ("iota", dim,
    start, step) if `arr` holds integers start + step*i along dimension `dim` (exactly
    representable ones, for floats) and is constant along the others; else None. Arbitrary
    data is rejected after a few samples, so this costs O(1) for real data and one pass for
    the arrays it accepts."""
    if arr.size < 2 or arr.dtype.kind not in "biuf":
        return None
    flat = arr.reshape(-1)
    first = flat[0]
    if flat[-1] == first and flat[flat.size // 2] == first:
        return ("fill", first) if bool(np.all(arr == first)) else None
    if arr.dtype.kind == "b":
        return None
    exact = 2.0 ** (np.finfo(arr.dtype).nmant + 1) if arr.dtype.kind == "f" else None
    for dim, n in enumerate(arr.shape):
        if n < 2:
            continue
        index = [0] * arr.ndim
        index[dim] = 1
        step = arr[tuple(index)] - first
        index[dim] = n - 1
        if arr[tuple(index)] != first + step * (n - 1) or flat[-1] != arr[tuple(index)]:
            continue
        view = [1] * arr.ndim
        view[dim] = n
        if exact is not None and not (  # floats: only integers the dtype holds exactly
                float(first).is_integer() and float(step).is_integer()
                and max(abs(first), abs(first + step * (n - 1))) < exact):
            return None
        expected = first + step * np.arange(n, dtype=arr.dtype).reshape(view)
        if np.array_equal(arr, np.broadcast_to(expected, arr.shape)):
            return ("iota", dim, first, step)
        return None
    return None


def check_live(t: Tracer) -> None:
    if not t.builder.active:
        raise EscapedTracerError(
            f"A traced value {t.aval} was used after the trace that created it had finished "
            f"(it escaped, e.g. through a global or a closure) at {user_location()}.")


_rebinds: list[dict] = []  # stacked {id(finished-trace tracer): the value it stands for}


@contextlib.contextmanager
def rebinding(tracers: Sequence, values: Sequence):
    """While active, tracers of finished traces among `tracers` stand for `values` in every
    `bind`. A user's derivative rule is Python code that may read values its function closed
    over; when a transform calls the rule later, those are tracers of a trace that has
    finished, and this maps them to their values in the trace being built."""
    _rebinds.append({id(t): v for t, v in zip(tracers, values)})
    try:
        yield
    finally:
        _rebinds.pop()


def _rebound(args) -> list:
    out = []
    for a in args:
        while isinstance(a, Tracer) and not a.builder.active:
            for m in reversed(_rebinds):
                if id(a) in m:
                    a = m[id(a)]
                    break
            else:
                break
        out.append(a)
    return out


def current_builder() -> Builder | None:
    return _builders[-1] if _builders else None


def trace_flat(fn: Callable, in_avals: Sequence[ShapedArray], name: str = "f",
               stage_all: bool = False) -> tuple[IR, list[Tracer]]:
    """Trace `fn(*tracers) -> list of outputs` into an IR.

    Returns the IR and the enclosing-trace tracers it captured; the IR's inputs are the
    declared inputs followed by one input per captured tracer.
    """
    builder = Builder(name, stage_all)
    _builders.append(builder)
    try:
        args = [builder.new_input(a) for a in in_avals]
        outs = fn(*args)
        ir, captured = builder.finish(list(outs))
    finally:
        builder.active = False
        _builders.pop()
    return ir, captured


# -- binding and evaluation ----------------------------------------------------------------

def _top_builder(args) -> Builder | None:
    top = None
    for a in args:
        if isinstance(a, Tracer) and (top is None or a.builder.level > top.level):
            top = a.builder
    return top


def bind(prim: Primitive, *args, **params):
    if _rebinds:
        args = _rebound(args)
    builder = _top_builder(args)
    if builder is None and _builders and _builders[-1].stage_all:
        builder = _builders[-1]
    if builder is None:
        outs = impl_rules[prim](*args, **params)
        if not prim.multiple_results:
            return outs
        return list(outs)
    if not builder.active:
        for a in args:
            if isinstance(a, Tracer):
                check_live(a)
    outs = builder.emit(prim, args, params)
    return outs if prim.multiple_results else outs[0]


def bind_into(builder: Builder | None, prim: Primitive, args: Sequence, params: dict):
    """Bind, recording into `builder` even when every argument is concrete."""
    if _rebinds:
        args = _rebound(args)
    if builder is None or _top_builder(args) is not None:
        return bind(prim, *args, **params)
    outs = builder.emit(prim, args, params)
    return outs if prim.multiple_results else outs[0]


def eval_ir(ir: IR, args: Sequence) -> list:
    """Run an IR on concrete values (NumPy) or record it into the trace of traced args."""
    if len(args) != len(ir.invars):
        raise TypeError(f"IR {ir.name} takes {len(ir.invars)} inputs, got {len(args)}")
    builder = _top_builder(args)
    if builder is None and _builders and _builders[-1].stage_all:
        builder = _builders[-1]
    env: dict[Var, object] = {}
    for v, a in zip(ir.invars, args):
        env[v] = a
    for v, c in zip(ir.constvars, ir.constvals):
        env[v] = c

    def read(a):
        return a.value if isinstance(a, Literal) else env[a]

    for eqn in ir.eqns:
        invals = [read(a) for a in eqn.inputs]
        outs = bind_into(builder, eqn.prim, invals, eqn.params)
        if not eqn.prim.multiple_results:
            outs = [outs]
        for v, o in zip(eqn.outs, outs):
            env[v] = o
    return [read(a) for a in ir.outs]


def full_like_aval(aval: ShapedArray, value):
    """An array of `aval`'s shape and dtype filled with `value`, recorded when tracing."""
    from .primitives.structural import broadcast_in_dim

    scalar = np.asarray(value, dtype=aval.dtype)[()]
    if aval.shape == ():
        return scalar
    return broadcast_in_dim(scalar, aval.shape, ())
