"""Operators and methods of traced arrays, and NumPy's dispatch protocols.

`np.sin(t)` reaches `Tracer.__array_ufunc__`, `np.sum(t)` reaches `__array_function__`; both
look the function up by name in this package, so NumPy code records the same IR as
`tracejit.numpy` code. A NumPy function without a rule raises NotImplementedError naming it.
"""

from __future__ import annotations

import numpy as np

from ..core import Tracer


def _ns():
    from .. import numpy as tnp
    return tnp


def _swap(fn):
    return lambda self, other: fn(other, self)


def _install() -> None:
    tnp = _ns()
    binary = {
        "add": tnp.add, "sub": tnp.subtract, "mul": tnp.multiply, "truediv": tnp.divide,
        "floordiv": tnp.floor_divide, "mod": tnp.mod, "pow": tnp.power,
        "matmul": tnp.matmul, "and": tnp.bitwise_and,
        "or": tnp.bitwise_or, "xor": tnp.bitwise_xor,
    }
    for name, fn in binary.items():
        setattr(Tracer, f"__{name}__", lambda self, other, _f=fn: _f(self, other))
        setattr(Tracer, f"__r{name}__", lambda self, other, _f=fn: _f(other, self))
    Tracer.__pow__ = _power_operator
    for name, fn in {"lt": tnp.less, "le": tnp.less_equal, "gt": tnp.greater,
                     "ge": tnp.greater_equal, "eq": tnp.equal, "ne": tnp.not_equal}.items():
        setattr(Tracer, f"__{name}__", lambda self, other, _f=fn: _f(self, other))
    Tracer.__neg__ = lambda self: tnp.negative(self)
    Tracer.__pos__ = lambda self: self
    Tracer.__abs__ = lambda self: tnp.absolute(self)
    Tracer.__invert__ = lambda self: tnp.invert(self)
    Tracer.__divmod__ = lambda self, other: (tnp.floor_divide(self, other),
                                             tnp.mod(self, other))
    Tracer.__getitem__ = lambda self, key: tnp._indexing.getitem(self, key)
    Tracer.__setitem__ = tnp._indexing.setitem_error
    Tracer.T = property(lambda self: tnp.transpose(self))
    Tracer.mT = property(lambda self: tnp.swapaxes(self, -1, -2))
    Tracer.real = property(lambda self: tnp.real(self))
    Tracer.imag = property(lambda self: tnp.imag(self))
    Tracer.conj = lambda self: tnp.conjugate(self)
    Tracer.conjugate = lambda self: tnp.conjugate(self)

    def reshape(self, *shape, order="C"):
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = shape[0]
        return tnp.reshape(self, shape, order=order)

    def transpose(self, *axes):
        if len(axes) == 1 and (axes[0] is None or not isinstance(axes[0], (int, np.integer))):
            axes = axes[0]
        return tnp.transpose(self, axes or None)

    Tracer.reshape = reshape
    Tracer.transpose = transpose
    Tracer.astype = lambda self, dtype, copy=True: tnp.astype(self, dtype)
    Tracer.flatten = lambda self, order="C": tnp.ravel(self, order)
    Tracer.copy = lambda self, order="C": self
    for name in ("sum", "mean", "prod", "max", "min", "argmax", "argmin", "var", "std",
                 "cumsum", "cumprod", "any", "all", "ravel", "squeeze", "swapaxes", "clip",
                 "round", "dot", "diagonal", "trace", "take", "repeat", "nonzero"):
        setattr(Tracer, name, _method(getattr(tnp, name)))
    Tracer.__array_ufunc__ = _array_ufunc
    Tracer.__array_function__ = _array_function


def _power_operator(self, other):
    """`x ** y` as NumPy's ndarray computes it: for a float or complex x and y the Python
    int -1 or 2 or the Python float 0.5, NumPy calls reciprocal, square or sqrt, whose
    special values differ from power's (`(0-0j) ** 2` is 0-0j, `power(0-0j, 2)` 0+0j;
    `(-0.0) ** 0.5` is -0.0, `(-inf) ** 0.5` nan)."""
    tnp = _ns()
    from .. import dtypes
    from ._base import dtype_item
    fast = None
    if type(other) is int and other in (-1, 2):
        fast = tnp.reciprocal if other == -1 else tnp.square
    elif type(other) is float and other == 0.5:
        fast = tnp.sqrt
    dtype = dtype_item(self)[0]
    if fast is not None and (dtypes.is_inexact(dtype) or
                             (fast is tnp.square and dtypes.is_bool(dtype))):
        return fast(self)  # a bool array squares too: bool ** 2 is int8 (power's is int64)
    return tnp.power(self, other)


def _method(fn):
    def method(self, *args, **kwargs):
        return fn(self, *args, **kwargs)
    method.__name__ = fn.__name__
    method.__doc__ = fn.__doc__
    return method


# ufuncs with a different name here
_UFUNC_ALIASES = {"absolute": "absolute", "true_divide": "divide", "conjugate": "conjugate"}


def _array_ufunc(self, ufunc, method, *inputs, **kwargs):
    tnp = _ns()
    name = ufunc.__name__
    if method != "__call__":
        reducers = {("add", "reduce"): "sum", ("multiply", "reduce"): "prod",
                    ("maximum", "reduce"): "max", ("minimum", "reduce"): "min",
                    ("add", "accumulate"): "cumsum", ("multiply", "accumulate"): "cumprod"}
        if (name, method) in reducers:
            kwargs.setdefault("axis", 0)
            return getattr(tnp, reducers[name, method])(*inputs, **kwargs)
        raise NotImplementedError(f"numpy.{name}.{method} is not supported by tracejit")
    if kwargs.get("out") is not None:
        raise NotImplementedError(f"numpy.{name} with out= is not supported on traced arrays")
    kwargs.pop("out", None)
    if kwargs:
        raise NotImplementedError(f"numpy.{name} with keyword arguments {sorted(kwargs)} is "
                                  "not supported on traced arrays")
    fn = getattr(tnp, _UFUNC_ALIASES.get(name, name), None)
    if fn is None or not callable(fn):
        raise NotImplementedError(f"numpy.{name} is not supported by tracejit (no rule for "
                                  "this ufunc)")
    return fn(*inputs)


def _array_function(self, func, types, args, kwargs):
    tnp = _ns()
    module = getattr(func, "__module__", "") or ""
    name = func.__name__
    fn = None
    if module.startswith("numpy.fft"):  # np.fft.fft(t) is tnp.fft.fft(t)
        fn = getattr(tnp.fft, name, None)
    elif module.startswith("numpy.linalg"):
        fn = getattr(tnp.linalg, name, None)
    elif module in ("numpy", "numpy.core.fromnumeric", "numpy.core.numeric") or \
            module.startswith("numpy._core") or module.startswith("numpy.core") or \
            module.startswith("numpy.lib") or module == "numpy":
        fn = getattr(tnp, name, None)
    if fn is None or not callable(fn) or name.startswith("_"):
        raise NotImplementedError(f"{module}.{name} is not supported by tracejit (no rule "
                                  "for this NumPy function)")
    return fn(*args, **kwargs)
