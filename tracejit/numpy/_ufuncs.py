"""Elementwise NumPy functions: promotion and broadcasting as NumPy does them, then one
primitive (or a short, numerically careful composition of primitives)."""

from __future__ import annotations

import builtins
import math

import numpy as np

from .. import dtypes
from ..core import Tracer
from ..primitives import elementwise as ew
from ..primitives import structural as st
from . import _complex_order as _co
from ._base import (
    as_operand,
    cast,
    dtype_item,
    promote_args,
    ufunc_dtype,
)


def _unary_float(ufunc, prim_fn):
    """sin, exp, ...: ints and bools compute in NumPy's float result dtype."""
    def fn(x, /):
        x = as_operand(x)
        return prim_fn(cast(x, ufunc_dtype(ufunc, x)))
    fn.__name__ = ufunc.__name__
    fn.__doc__ = f"Like numpy.{ufunc.__name__}."
    return fn


sin = _unary_float(np.sin, ew.sin)
cos = _unary_float(np.cos, ew.cos)
tan = _unary_float(np.tan, ew.tan)
arcsin = _unary_float(np.arcsin, ew.asin)
arccos = _unary_float(np.arccos, ew.acos)
arctan = _unary_float(np.arctan, ew.atan)
sinh = _unary_float(np.sinh, ew.sinh)
cosh = _unary_float(np.cosh, ew.cosh)
tanh = _unary_float(np.tanh, ew.tanh)
arcsinh = _unary_float(np.arcsinh, ew.asinh)
arccosh = _unary_float(np.arccosh, ew.acosh)
arctanh = _unary_float(np.arctanh, ew.atanh)
exp = _unary_float(np.exp, ew.exp)
expm1 = _unary_float(np.expm1, ew.expm1)
exp2 = _unary_float(np.exp2, ew.exp2)
log = _unary_float(np.log, ew.log)
log1p = _unary_float(np.log1p, ew.log1p)
log2 = _unary_float(np.log2, ew.log2)
log10 = _unary_float(np.log10, ew.log10)
sqrt = _unary_float(np.sqrt, ew.sqrt)
cbrt = _unary_float(np.cbrt, ew.cbrt)


def _unary_keep(ufunc, prim_fn, rounding=False):
    """neg, abs, floor, ...: the dtype is kept (rounding ints is the identity)."""
    def fn(x, /):
        x = as_operand(x)
        dtype = ufunc_dtype(ufunc, x)
        if rounding and dtypes.is_complex(dtype):  # NumPy's rint rounds both parts
            return ew.complex_(fn(ew.real(x)), fn(ew.imag(x)))
        if rounding and not dtypes.is_float(dtype):
            return cast(x, dtype)
        if ufunc is np.absolute and dtypes.is_bool(dtype):  # abs of bools is the identity
            return cast(x, dtype)
        if dtypes.is_complex(dtype_item(x)[0]):  # |z| is real: the operand stays complex
            return prim_fn(x)
        return prim_fn(cast(x, dtype))
    fn.__name__ = ufunc.__name__
    fn.__doc__ = f"Like numpy.{ufunc.__name__}."
    return fn


negative = _unary_keep(np.negative, ew.neg)
absolute = _unary_keep(np.absolute, ew.abs_)
abs = absolute
fabs = _unary_float(np.fabs, ew.abs_)
sign = _unary_keep(np.sign, ew.sign)
floor = _unary_keep(np.floor, ew.floor, rounding=True)
ceil = _unary_keep(np.ceil, ew.ceil, rounding=True)
trunc = _unary_keep(np.trunc, ew.trunc, rounding=True)
rint = _unary_keep(np.rint, ew.round_, rounding=True)
fix = trunc


def positive(x, /):
    return as_operand(x)


def round(a, decimals=0):
    """Round half to even, as NumPy; `decimals` scales by a power of ten."""
    a = as_operand(a)
    if dtypes.is_complex(dtype_item(a)[0]):  # NumPy rounds both parts
        return ew.complex_(round(ew.real(a), decimals), round(ew.imag(a), decimals))
    if not dtypes.is_float(dtype_item(a)[0]):
        if dtypes.is_bool(dtype_item(a)[0]) and decimals == 0:
            return rint(a)  # NumPy rounds bools in float16
        return a if decimals >= 0 else cast(round(cast(a, np.float64), decimals), a.dtype)
    if decimals == 0:
        return ew.round_(a)
    scale = 10.0 ** decimals
    return divide(ew.round_(multiply(a, scale)), scale)


around = round


def square(x, /):
    x = as_operand(x)
    dtype = ufunc_dtype(np.square, x)
    if dtypes.is_complex(dtype):  # NumPy's square is z * z (power(z, 2) differs at 0)
        x = cast(x, dtype)
        return ew.mul(x, x)
    return ew.integer_pow(cast(x, dtype), 2)


def reciprocal(x, /):
    x = as_operand(x)
    dtype = ufunc_dtype(np.reciprocal, x)
    if not dtypes.is_inexact(dtype):
        # NumPy's integer 1 / x truncates: x where |x| == 1, else 0
        x = cast(x, dtype)
        return where(equal(absolute(x), 1), x, cast(0, dtype))
    if dtypes.is_complex(dtype):
        return _complex_reciprocal(cast(x, dtype))
    return ew.div(np.asarray(1, dtype)[()], cast(x, dtype))


def _complex_reciprocal(z):
    """NumPy's complex reciprocal, from the parts: with p the part of larger magnitude and
    q the other, r = q / p and d = p + q r, 1/z is (1/d, -r/d) when p is the real part,
    else (r/d, -1/d). So 1/0 is nan+nanj and 1/inf is 0-0j, as NumPy's (1 / z differs)."""
    re, im = ew.real(z), ew.imag(z)
    real_big = ew.le(ew.abs_(im), ew.abs_(re))
    p, q = st.select(real_big, re, im), st.select(real_big, im, re)
    r = ew.div(q, p)
    d = ew.add(p, ew.mul(q, r))
    one = np.asarray(1, dtype_item(re)[0])[()]
    a, b = ew.div(one, d), ew.div(r, d)
    return ew.complex_(st.select(real_big, a, b), ew.neg(st.select(real_big, b, a)))


def _binary(ufunc, prim_fn):
    def fn(x1, x2, /):
        (a, b), _ = promote_args(x1, x2, dtype=ufunc_dtype(ufunc, as_operand(x1),
                                                            as_operand(x2)))
        return prim_fn(a, b)
    fn.__name__ = ufunc.__name__
    fn.__doc__ = f"Like numpy.{ufunc.__name__}."
    return fn


def _bool_as(prim_fn, bool_fn):
    """NumPy's add/multiply of bools are logical or/and."""
    def fn(a, b):
        return bool_fn(a, b) if dtypes.is_bool(dtype_item(a)[0]) else prim_fn(a, b)
    return fn


add = _binary(np.add, _bool_as(ew.add, ew.or_))
subtract = _binary(np.subtract, ew.sub)
multiply = _binary(np.multiply, _bool_as(ew.mul, ew.and_))
divide = _binary(np.true_divide, ew.div)
true_divide = divide
arctan2 = _binary(np.arctan2, ew.atan2)
hypot = _binary(np.hypot, ew.hypot)
def _extremum_binary(ufunc, prim_fn, complex_fn):
    def fn(x1, x2, /):
        (a, b), _ = promote_args(x1, x2, dtype=ufunc_dtype(ufunc, as_operand(x1),
                                                            as_operand(x2)))
        return complex_fn(a, b) if dtypes.is_complex(dtype_item(a)[0]) else prim_fn(a, b)
    fn.__name__ = ufunc.__name__
    fn.__doc__ = f"Like numpy.{ufunc.__name__} (complex values in NumPy's lexicographic order)."
    return fn


maximum = _extremum_binary(np.maximum, ew.max_, _co.maximum)
minimum = _extremum_binary(np.minimum, ew.min_, _co.minimum)
mod = _binary(np.mod, ew.rem)
remainder = mod
nextafter = _binary(np.nextafter, ew.nextafter)


def floor_divide(x1, x2, /):
    a, b = as_operand(x1), as_operand(x2)
    dtype = ufunc_dtype(np.floor_divide, a, b)
    (a, b), _ = promote_args(a, b, dtype=dtype)
    # one primitive for floats too: floor(a / b) rounds a / b first, and 0.7 // 0.1 is 6,
    # not 7 (the quotient of a - fmod(a, b), as NumPy and Python compute it)
    return ew.floor_divide(a, b)


def _compare(ufunc, prim_fn):
    def fn(x1, x2, /):
        a, b = as_operand(x1), as_operand(x2)
        (a, b), _ = promote_args(a, b)
        if prim_fn in _co.COMPARISONS and dtypes.is_complex(dtype_item(a)[0]):
            return _co.COMPARISONS[prim_fn](a, b)  # NumPy's lexicographic order
        return prim_fn(a, b)
    fn.__name__ = ufunc.__name__
    fn.__doc__ = f"Like numpy.{ufunc.__name__}."
    return fn


equal = _compare(np.equal, ew.eq)
not_equal = _compare(np.not_equal, ew.ne)
less = _compare(np.less, ew.lt)
less_equal = _compare(np.less_equal, ew.le)
greater = _compare(np.greater, ew.gt)
greater_equal = _compare(np.greater_equal, ew.ge)


def _truth(x):
    x = as_operand(x)
    if dtypes.is_bool(dtype_item(x)[0]):
        return x
    return not_equal(x, 0)


def logical_and(x1, x2, /):
    (a, b), _ = promote_args(_truth(x1), _truth(x2))
    return ew.and_(a, b)


def logical_or(x1, x2, /):
    (a, b), _ = promote_args(_truth(x1), _truth(x2))
    return ew.or_(a, b)


def logical_xor(x1, x2, /):
    (a, b), _ = promote_args(_truth(x1), _truth(x2))
    return ew.xor(a, b)


def logical_not(x, /):
    return ew.logical_not(_truth(x))


def _bitwise(ufunc, prim_fn):
    def fn(x1, x2, /):
        a, b = as_operand(x1), as_operand(x2)
        (a, b), _ = promote_args(a, b, dtype=ufunc_dtype(ufunc, a, b))
        return prim_fn(a, b)
    fn.__name__ = ufunc.__name__
    return fn


bitwise_and = _bitwise(np.bitwise_and, ew.and_)
bitwise_or = _bitwise(np.bitwise_or, ew.or_)
bitwise_xor = _bitwise(np.bitwise_xor, ew.xor)


def invert(x, /):
    x = as_operand(x)
    if dtypes.is_bool(dtype_item(x)[0]):
        return ew.logical_not(x)
    raise NotImplementedError("tracejit.numpy.invert is implemented for booleans only")


def isnan(x, /):
    x = as_operand(x)
    if not dtypes.is_inexact(dtype_item(x)[0]):
        return _full_bool(x, False)
    return ew.isnan(x)


def isfinite(x, /):
    x = as_operand(x)
    if not dtypes.is_inexact(dtype_item(x)[0]):
        return _full_bool(x, True)
    return ew.isfinite(x)


def isinf(x, /):
    x = as_operand(x)
    if dtypes.is_complex(dtype_item(x)[0]):  # NumPy: either part infinite (inf+nanj too)
        return logical_or(isinf(ew.real(x)), isinf(ew.imag(x)))
    return logical_and(logical_not(isfinite(x)), logical_not(isnan(x)))


def _full_bool(x, value):
    from ._creation import full_like
    return full_like(x, value, dtype=bool)


def _concrete_scalar(b):
    """`b` as a 0-d NumPy array if it is a concrete scalar (not traced), else None."""
    if isinstance(b, Tracer) or (isinstance(b, np.ndarray) and b.ndim != 0):
        return None
    e = np.asarray(b)
    return e if e.ndim == 0 else None


def power(x1, x2, /):
    a, b = as_operand(x1), as_operand(x2)
    dtype = ufunc_dtype(np.power, a, b)
    e = _concrete_scalar(b)
    if e is not None:
        # builtins.abs: this module's `abs` is NumPy's (it would record an equation while a
        # transform stages everything)
        if e.dtype.kind not in "bc" and float(e) == int(e) and \
                builtins.abs(int(e)) <= 64:
            if not dtypes.is_inexact(dtype) and int(e) < 0:
                raise ValueError("Integers to negative integer powers are not allowed.")
            return ew.integer_pow(cast(a, dtype), int(e))
        if e.dtype.kind == "f" and float(e) == 0.5 and dtypes.is_float(dtype):
            # NumPy's loop takes sqrt for a scalar exponent 0.5: (-0.0) ** 0.5 is -0.0 and
            # (-inf) ** 0.5 nan, where C's pow gives 0.0 and inf
            return ew.sqrt(cast(a, dtype))
    if not dtypes.is_inexact(dtype) and not isinstance(a, Tracer) and \
            not isinstance(b, Tracer):
        return np.power(a, b)  # concrete integers: NumPy computes them
    if not dtypes.is_inexact(dtype):
        raise NotImplementedError("tracejit.numpy.power of integer arrays needs a concrete "
                                  "integer exponent")
    (a, b), _ = promote_args(a, b, dtype=dtype)
    return ew.pow(a, b)


def float_power(x1, x2, /):
    """power in float64, or complex128 when an operand is complex (as NumPy)."""
    a, b = as_operand(x1), as_operand(x2)
    complex_ = dtypes.is_complex(dtype_item(a)[0]) or dtypes.is_complex(dtype_item(b)[0])
    dt = np.complex128 if complex_ else np.float64
    e = _concrete_scalar(b)
    if not complex_ and e is not None and e.dtype.kind == "f" and float(e) == 0.5:
        (a, b), _ = promote_args(a, b, dtype=dt)
        return ew.pow(a, b)  # float_power has no sqrt shortcut: C's pow at -0.0 and -inf
    return power(cast(a, dt), cast(b, dt))


def fmax(x1, x2, /):
    """Maximum that ignores NaNs (returns the other operand)."""
    a, b = as_operand(x1), as_operand(x2)
    (a, b), _ = promote_args(a, b, dtype=ufunc_dtype(np.fmax, a, b))
    if dtypes.is_complex(dtype_item(a)[0]):
        return _co.maximum(a, b, ignore_nan=True)
    if not dtypes.is_float(dtype_item(a)[0]):
        return ew.max_(a, b)
    return st.select(ew.isnan(b), a, st.select(ew.isnan(a), b, ew.max_(a, b)))


def fmin(x1, x2, /):
    a, b = as_operand(x1), as_operand(x2)
    (a, b), _ = promote_args(a, b, dtype=ufunc_dtype(np.fmin, a, b))
    if dtypes.is_complex(dtype_item(a)[0]):
        return _co.minimum(a, b, ignore_nan=True)
    if not dtypes.is_float(dtype_item(a)[0]):
        return ew.min_(a, b)
    return st.select(ew.isnan(b), a, st.select(ew.isnan(a), b, ew.min_(a, b)))


def logaddexp(x1, x2, /):
    """log(exp(a) + exp(b)) without overflow (one primitive; its derivative is the
    softmax weight exp(a - result))."""
    a, b = as_operand(x1), as_operand(x2)
    (a, b), _ = promote_args(a, b, dtype=ufunc_dtype(np.logaddexp, a, b))
    return ew.logaddexp(a, b)


def logaddexp2(x1, x2, /):
    ln2 = math.log(2.0)  # a Python float: weak, so float32 stays float32
    return divide(logaddexp(multiply(x1, ln2), multiply(x2, ln2)), ln2)


def sinc(x, /):
    x = as_operand(x)
    y = multiply(x, np.pi)
    safe = where(equal(y, 0), 1.0, y)
    return where(equal(y, 0), 1.0, divide(sin(safe), safe))


def _real_angle(x, name):
    x = as_operand(x)
    if dtypes.is_complex(dtype_item(x)[0]):
        raise TypeError(f"{name} is not supported for complex values (as in NumPy)")
    return x


def deg2rad(x, /):
    return multiply(_real_angle(x, "deg2rad"), np.pi / 180.0)


def rad2deg(x, /):
    return multiply(_real_angle(x, "rad2deg"), 180.0 / np.pi)


radians, degrees = deg2rad, rad2deg


def clip(a, a_min=None, a_max=None, out=None, **kwargs):
    """NumPy's clip: minimum(maximum(a, a_min), a_max)."""
    if out is not None:
        raise NotImplementedError("tracejit.numpy.clip does not support out=")
    a_min = kwargs.pop("min", a_min)
    a_max = kwargs.pop("max", a_max)
    if kwargs:
        raise TypeError(f"clip() got unexpected keyword arguments {sorted(kwargs)}")
    if a_min is None and a_max is None:
        raise ValueError("One of max or min must be given")
    result = as_operand(a)
    if a_min is not None:
        result = maximum(result, a_min)
    if a_max is not None:
        result = minimum(result, a_max)
    return result


def where(condition, x=None, y=None, /):
    """Elementwise choice. The one-argument form has a data-dependent shape."""
    if x is None and y is None:
        from ._indexing import nonzero
        return nonzero(condition)
    if x is None or y is None:
        raise ValueError("either both or neither of x and y should be given")
    c = _truth(condition)
    (x, y), _ = promote_args(x, y)
    (c, x, y), _ = _broadcast3(c, x, y)
    return st.select(c, x, y)


def _broadcast3(c, x, y):
    from ._base import broadcast_shapes, broadcast_to, ndim, shape
    out_shape = broadcast_shapes(shape(c), shape(x), shape(y))
    return [v if ndim(v) == 0 else broadcast_to(v, out_shape) for v in (c, x, y)], out_shape


def signbit(x, /):
    """The sign bit (set for -0.0 and negative NaNs too, as NumPy's)."""
    x = as_operand(x)
    if isinstance(x, np.ndarray):
        return np.signbit(x)
    dtype = dtype_item(x)[0]
    if dtypes.is_complex(dtype):
        raise TypeError("signbit is not supported for complex values (as in NumPy)")
    return ew.signbit(x) if dtypes.is_float(dtype) else less(x, 0)  # ints, bools: x < 0


def copysign(x1, x2, /):
    a, b = as_operand(x1), as_operand(x2)
    (a, b), _ = promote_args(a, b, dtype=ufunc_dtype(np.copysign, a, b))
    magnitude = absolute(a)
    return where(signbit(b), negative(magnitude), magnitude)


def heaviside(x1, x2, /):
    step = where(less(x1, 0), 0.0, where(equal(x1, 0), x2, 1.0))
    return where(isnan(x1), x1, step)  # NaN stays NaN, as in NumPy


def conjugate(x, /):
    x = as_operand(x)
    return ew.conj(x) if dtypes.is_complex(dtype_item(x)[0]) else x


conj = conjugate

