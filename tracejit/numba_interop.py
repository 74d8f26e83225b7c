"""Existing Numba code inside traced programs: `numba_call` and `elementwise`.

`numba_call(kernel, *args, out=ShapeDtype(...))` calls an `@numba.njit` function on whole
arrays as one primitive: the interpreter calls the dispatcher, and compiled programs call it
from their generated Numba code (a global bound from `compiler.external`), so no Python
boundary is crossed. It has no derivative of its own: wrap the call in a `custom_jvp` or
`custom_vjp` function to give it one. Under `vmap` it runs once per lane (a loop over the
batch).

`elementwise(kernel)` turns a scalar `@numba.njit` function into an elementwise primitive
(one row of the elementwise table), which the planner fuses into loops like `sin`: the loop
body calls the kernel on scalars. Its derivative comes from tracing the kernel's Python body
(`kernel.py_func`) on arrays, with `math.*` and `np.*` calls read as `tracejit.numpy`
functions; a body that branches on its arguments cannot be traced that way, and the error
says to give it a rule with `custom_jvp`.
"""

from __future__ import annotations

import functools
import math
import types
from typing import NamedTuple

import numpy as np

from . import dtypes
from .compiler import external
from .core import Primitive, Tracer, abstract_eval_rules, bind, impl_rules, trace_flat
from .errors import ConcretizationError
from .ir import ShapedArray, aval_of
from .transforms.batching import batching_rules
from .transforms.jvp import instantiate, jvp_rules


class ShapeDtype(NamedTuple):
    """The shape and dtype of an array a Numba kernel returns."""
    shape: tuple
    dtype: np.dtype

    @classmethod
    def of(cls, spec) -> ShapeDtype:
        shape = tuple(int(d) for d in getattr(spec, "shape", ()))
        return cls(shape, np.dtype(spec.dtype))


def _check_dispatcher(kernel, fname: str) -> None:
    if not (hasattr(kernel, "py_func") and hasattr(kernel, "signatures")):
        raise TypeError(f"{fname}: expected a function decorated with @numba.njit, got "
                        f"{type(kernel).__name__}")


def _kernel_name(kernel) -> str:
    return getattr(kernel.py_func, "__name__", "kernel")


# -- numba_call ------------------------------------------------------------------------------

numba_call_p = Primitive("numba_call", multiple_results=True)


def numba_call(kernel, *args, out):
    """`kernel(*args)` for an `@numba.njit` function returning arrays shaped like `out` (a
    `ShapeDtype`, anything with `.shape` and `.dtype`, or a tuple of them)."""
    _check_dispatcher(kernel, "numba_call")
    single = isinstance(out, ShapeDtype) or not isinstance(out, (tuple, list))
    specs = [ShapeDtype.of(o) for o in ([out] if single else out)]
    for s in specs:
        dtypes.check_supported(s.dtype)
    operands = []
    for k, a in enumerate(args):
        if isinstance(a, Tracer):
            operands.append(a)
            continue
        arr = np.asarray(a)
        if arr.dtype == object:
            raise TypeError(f"numba_call({_kernel_name(kernel)}): argument {k} is not an "
                            f"array or number ({type(a).__name__})")
        operands.append(arr)
    outs = bind(numba_call_p, *operands, kernel=kernel, name=external.register(kernel),
                out_avals=tuple(ShapedArray(s.shape, s.dtype) for s in specs))
    return outs[0] if single else tuple(outs)


def _numba_call_abstract(*avals, kernel, name, out_avals):
    return list(out_avals)


def _numba_call_impl(*args, kernel, name, out_avals):
    res = kernel(*[np.ascontiguousarray(a) if isinstance(a, np.ndarray) and a.ndim else a
                   for a in args])
    outs = [res] if len(out_avals) == 1 else res
    if len(out_avals) > 1 and (not isinstance(outs, tuple) or len(outs) != len(out_avals)):
        raise TypeError(f"numba_call({_kernel_name(kernel)}): `out` declares "
                        f"{len(out_avals)} outputs, the kernel returned {type(res).__name__}")
    checked = []
    for k, (o, want) in enumerate(zip(outs, out_avals)):
        o = np.asarray(o)
        if o.shape != want.shape or o.dtype != want.dtype:
            raise TypeError(f"numba_call({_kernel_name(kernel)}): output {k} is "
                            f"{dtypes.short_name(o.dtype)}{list(o.shape)}, but `out` declares "
                            f"{want}")
        checked.append(o)
    return checked


def _numba_call_jvp(primals, tangents, *, kernel, name, out_avals):
    raise TypeError(f"numba_call({_kernel_name(kernel)}) has no derivative: call it inside "
                    "a function decorated with tj.custom_jvp or tj.custom_vjp and give that "
                    "function a rule")


def _numba_call_batch(args, batched, size, *, kernel, name, out_avals):
    """One call per lane: a scan over the batch, unbatched operands passed whole."""
    from .primitives import control as cf
    consts = [a for a, b in zip(args, batched) if not b]
    xs = [a for a, b in zip(args, batched) if b]
    c_avals = [_aval(a) for a in consts]
    x_avals = [ShapedArray(_aval(a).shape[1:], _aval(a).dtype) for a in xs]

    def lane(*vals):
        it_c, it_x = iter(vals[:len(consts)]), iter(vals[len(consts):])
        ops = [next(it_x) if b else next(it_c) for b in batched]
        return bind(numba_call_p, *ops, kernel=kernel, name=name, out_avals=out_avals)
    body, captured = trace_flat(lane, c_avals + x_avals, name=f"numba_{_kernel_name(kernel)}")
    assert not captured
    outs = cf.scan_bind(consts, [], xs, body, size, False)
    return outs, [True] * len(outs)


def _aval(x) -> ShapedArray:
    return x.aval if isinstance(x, Tracer) else aval_of(x)


abstract_eval_rules[numba_call_p] = _numba_call_abstract
impl_rules[numba_call_p] = _numba_call_impl
jvp_rules[numba_call_p] = _numba_call_jvp
batching_rules[numba_call_p] = _numba_call_batch


# -- elementwise -----------------------------------------------------------------------------

_MATH_RENAMES = {"fabs": "abs", "asin": "arcsin", "acos": "arccos", "atan": "arctan",
                 "asinh": "arcsinh", "acosh": "arccosh", "atanh": "arctanh", "pow": "power",
                 "atan2": "arctan2"}
_SCIPY_MATH = {"erf", "erfc", "gamma", "lgamma"}


class _TracedMath(types.ModuleType):
    """`math` as a traced kernel body sees it: its functions are tracejit.numpy's."""

    def __init__(self):
        super().__init__("math")
        for const in ("pi", "e", "tau", "inf", "nan"):
            setattr(self, const, getattr(math, const))

    def __getattr__(self, attr):
        from . import numpy as tnp
        if attr in _SCIPY_MATH:
            from .scipy import special
            return {"gamma": lambda x: tnp.exp(special.gammaln(x)),
                    "lgamma": special.gammaln}.get(attr) or getattr(special, attr)
        fn = getattr(tnp, _MATH_RENAMES.get(attr, attr), None)
        if fn is None:
            raise AttributeError(f"math.{attr} has no tracejit.numpy counterpart")
        return fn


def _traced_body(kernel):
    """`kernel.py_func` with `math` and NumPy read as tracejit's (so it runs on tracers)."""
    from . import numpy as tnp
    py = kernel.py_func
    glob = dict(py.__globals__)
    for k, v in py.__globals__.items():
        if v is math:
            glob[k] = _TracedMath()
        elif v is np:
            glob[k] = tnp
    return types.FunctionType(py.__code__, glob, py.__name__, py.__defaults__,
                              py.__closure__)


@functools.cache
def _row(kernel, name: str, arity: int):
    from .primitives import elementwise as ew
    ufunc = np.frompyfunc(kernel, arity, 1)

    def numpy_impl(*xs):
        out = ufunc(*xs)
        return np.asarray(out, dtype=np.result_type(*xs))
    expr = f"{name}(" + ", ".join(f"{{{i}}}" for i in range(arity)) + ")"
    prim = ew._register(f"numba_{_kernel_name(kernel)}", numpy_impl, expr, arity, "float",
                        "same")
    body = _traced_body(kernel)

    def rule(primals, tangents):
        from .api import jvp
        out = bind(prim, *primals)
        try:
            _, t = jvp(body, tuple(primals), tuple(instantiate(t) for t in tangents))
        except ConcretizationError as e:
            raise TypeError(
                f"tj.elementwise({_kernel_name(kernel)}): its derivative comes from tracing "
                f"its Python body on arrays, which failed: {str(e).splitlines()[0]} Give it "
                "a rule: call it inside a function decorated with tj.custom_jvp") from None
        return out, t
    jvp_rules[prim] = rule
    return prim


def elementwise(kernel):
    """An elementwise function of arrays from a scalar `@numba.njit` function of floats;
    inputs broadcast and promote as in NumPy's ufuncs."""
    _check_dispatcher(kernel, "elementwise")
    arity = kernel.py_func.__code__.co_argcount
    name = external.register(kernel)

    @functools.wraps(kernel.py_func)
    def apply(*args):
        from . import numpy as tnp
        if len(args) != arity:
            raise TypeError(f"{_kernel_name(kernel)} takes {arity} arguments, got {len(args)}")
        prim = _row(kernel, name, arity)
        dtype = tnp.result_type(*args, 0.0)  # Python numbers are weak, as in NumPy
        ops = tnp.broadcast_arrays(*[tnp.asarray(a, dtype=dtype) for a in args])
        return bind(prim, *ops)
    return apply


__all__ = ["ShapeDtype", "numba_call", "elementwise"]
