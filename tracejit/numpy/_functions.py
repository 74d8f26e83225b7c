"""Numerical functions that are short compositions of the rest of the front end: finite
differences, products of vectors, convolution, interpolation, polynomials, integration and
piecewise definitions. Each is differentiable because its parts are."""

from __future__ import annotations

import warnings

import numpy as np

from .. import dtypes
from ..core import Tracer
from ._base import as_operand, aval, cast, normalize_axis, shape, static_int
from ._indexing import getitem, take
from ._linalg import dot
from ._reductions import any, sum
from ._shape import concatenate, moveaxis, reshape, stack
from ._ufuncs import (
    add,
    divide,
    greater,
    less,
    less_equal,
    logical_not,
    multiply,
    not_equal,
    subtract,
    where,
)


def _along(x, axis, start=None, stop=None):
    """x[..., start:stop, ...] with the slice on `axis`."""
    key = [slice(None)] * len(shape(x))
    key[axis] = slice(start, stop)
    return getitem(x, tuple(key))


def _axis_shape(nd, axis, n):
    s = [1] * nd
    s[axis] = n
    return tuple(s)


def diff(a, n=1, axis=-1, prepend=np._NoValue, append=np._NoValue):
    a = as_operand(a)
    n = static_int(n, "n")
    if n == 0:
        return a
    if n < 0:
        raise ValueError(f"order must be non-negative but got {n}")
    nd = len(shape(a))
    if nd == 0:
        raise ValueError("diff requires input that is at least one dimensional")
    axis = normalize_axis(axis, nd)
    parts = []
    for value in (prepend, append):
        if value is np._NoValue:
            parts.append(None)
            continue
        value = as_operand(value)
        if len(shape(value)) == 0:
            target = list(shape(a))
            target[axis] = 1
            from ._shape import broadcast_to
            value = broadcast_to(value, tuple(target))
        parts.append(value)
    if parts[0] is not None or parts[1] is not None:
        a = concatenate([p for p in (parts[0], a, parts[1]) if p is not None], axis=axis)
    boolean = dtypes.is_bool(aval(a).dtype)
    for _ in range(n):
        hi, lo = _along(a, axis, 1, None), _along(a, axis, None, -1)
        a = not_equal(hi, lo) if boolean else subtract(hi, lo)
    return a


def gradient(f, *varargs, axis=None, edge_order=1):
    """Central differences inside, one-sided (first order) at the edges, as numpy.gradient
    with edge_order=1; spacing is a scalar, one scalar per axis, or coordinate arrays."""
    f = as_operand(f)
    nd = len(shape(f))
    if axis is not None and not isinstance(axis, (tuple, list)):
        axes_in = [axis]
    else:
        axes_in = list(axis) if axis is not None else list(range(nd))
    axes = tuple(normalize_axis(ax, nd) for ax in axes_in)
    if len(set(axes)) != len(axes):
        raise ValueError(f"duplicate value in 'axis': {axis}")
    if edge_order != 1:
        raise NotImplementedError("tracejit.numpy.gradient supports edge_order=1 only")
    if len(varargs) == 0:
        spacing = [1.0] * len(axes)
    elif len(varargs) == 1 and np.ndim(varargs[0]) == 0:
        spacing = list(varargs) * len(axes)
    elif len(varargs) == len(axes):
        spacing = list(varargs)
    else:
        raise TypeError("invalid number of arguments")
    dt = aval(f).dtype if dtypes.is_inexact(aval(f).dtype) else np.dtype(np.float64)
    fx = cast(f, dt)
    outs = []
    for ax, h in zip(axes, spacing):
        n = shape(f)[ax]
        if n < edge_order + 1:
            raise ValueError("Shape of array too small to calculate a numerical gradient, at "
                             "least (edge_order + 1) elements are required.")
        h = as_operand(h)
        if len(shape(h)) == 0:
            inner = divide(subtract(_along(fx, ax, 2, None), _along(fx, ax, None, -2)),
                           multiply(2.0, h))
            first = divide(subtract(_along(fx, ax, 1, 2), _along(fx, ax, 0, 1)), h)
            last = divide(subtract(_along(fx, ax, -1, None), _along(fx, ax, -2, -1)), h)
        else:
            if len(shape(h)) != 1:
                raise ValueError("distances must be either scalars or 1d")
            if shape(h)[0] != n:
                raise ValueError("when 1d, distances must match the length of the "
                                 "corresponding dimension")
            dx = diff(h)
            dx1, dx2 = _along(dx, 0, None, -1), _along(dx, 0, 1, None)
            c_lo = divide(multiply(-1.0, dx2), multiply(dx1, add(dx1, dx2)))
            c_mid = divide(subtract(dx2, dx1), multiply(dx1, dx2))
            c_hi = divide(dx1, multiply(dx2, add(dx1, dx2)))
            s = _axis_shape(nd, ax, n - 2)
            inner = add(add(multiply(reshape(c_lo, s), _along(fx, ax, None, -2)),
                            multiply(reshape(c_mid, s), _along(fx, ax, 1, -1))),
                        multiply(reshape(c_hi, s), _along(fx, ax, 2, None)))
            first = divide(subtract(_along(fx, ax, 1, 2), _along(fx, ax, 0, 1)),
                           getitem(dx, 0))
            last = divide(subtract(_along(fx, ax, -1, None), _along(fx, ax, -2, -1)),
                          getitem(dx, -1))
        out = concatenate([first, inner, last] if n > 2 else [first, last], axis=ax)
        outs.append(cast(out, dt))
    return outs[0] if len(outs) == 1 else tuple(outs)


def cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = as_operand(a), as_operand(b)
    a = moveaxis(a, normalize_axis(axisa, len(shape(a)), "axisa"), -1)
    b = moveaxis(b, normalize_axis(axisb, len(shape(b)), "axisb"), -1)
    na, nb = shape(a)[-1], shape(b)[-1]
    if na not in (2, 3) or nb not in (2, 3):
        raise ValueError("incompatible dimensions for cross product\n(dimension must be 2 "
                         "or 3)")
    if na == 2 or nb == 2:
        warnings.warn("Arrays of 2-dimensional vectors are deprecated. Use arrays of "
                      "3-dimensional vectors instead. (deprecated in NumPy 2.0)",
                      DeprecationWarning, stacklevel=2)
    a0, a1, b0, b1 = (getitem(v, (Ellipsis, i)) for v, i in ((a, 0), (a, 1), (b, 0), (b, 1)))
    z = subtract(multiply(a0, b1), multiply(a1, b0))
    if na == 2 and nb == 2:
        return z
    if na == 3 and nb == 3:
        a2, b2 = getitem(a, (Ellipsis, 2)), getitem(b, (Ellipsis, 2))
        x = subtract(multiply(a1, b2), multiply(a2, b1))
        y = subtract(multiply(a2, b0), multiply(a0, b2))
    elif na == 2:
        b2 = getitem(b, (Ellipsis, 2))
        x, y = multiply(a1, b2), multiply(-1, multiply(a0, b2))
    else:
        a2 = getitem(a, (Ellipsis, 2))
        x, y = multiply(-1, multiply(a2, b1)), multiply(a2, b0)
    from ._shape import broadcast_arrays
    x, y, z = broadcast_arrays(x, y, z)
    out_nd = len(shape(z)) + 1
    return moveaxis(stack([x, y, z], axis=-1), -1, normalize_axis(axisc, out_nd, "axisc"))


def kron(a, b):
    a, b = as_operand(a), as_operand(b)
    sa, sb = shape(a), shape(b)
    if len(sa) == 0 or len(sb) == 0:
        return multiply(a, b)
    nd = max(len(sa), len(sb))
    sa = (1,) * (nd - len(sa)) + tuple(sa)
    sb = (1,) * (nd - len(sb)) + tuple(sb)
    ea = reshape(a, [d for x in sa for d in (x, 1)])
    eb = reshape(b, [d for x in sb for d in (1, x)])
    return reshape(multiply(ea, eb), [x * y for x, y in zip(sa, sb)])


def _correlate_full(a, v):
    a, v = as_operand(a), as_operand(v)
    for x in (a, v):
        if len(shape(x)) > 1:
            raise ValueError("object too deep for desired array")
    if len(shape(a)) == 0:
        a = reshape(a, (1,))
    if len(shape(v)) == 0:
        v = reshape(v, (1,))
    n, m = shape(a)[0], shape(v)[0]
    if n == 0:
        raise ValueError("a cannot be empty")
    if m == 0:
        raise ValueError("v cannot be empty")
    from ._base import result_dtype
    dt = result_dtype(a, v)
    a, v = cast(a, dt), cast(v, dt)
    from ._shape import pad
    padded = pad(a, (m - 1, m - 1))
    # Window k of the padded signal holds a[k - (m - 1) + j] at column j.
    windows = take(padded, np.arange(n + m - 1)[:, None] + np.arange(m)[None, :])
    return dot(windows, v), n, m


def _mode_slice(full, n, m, mode, reversed_=False):
    length = n + m - 1
    if mode == "full":
        return full
    if mode == "same":
        # NumPy correlates the longer sequence with the shorter one and reverses the
        # result when v is longer, so the centred window then rounds the other way.
        k = max(n, m)
        start = (length - k + (1 if reversed_ else 0)) // 2
        return _along(full, 0, start, start + k)
    if mode == "valid":
        k = max(n, m) - min(n, m) + 1
        start = min(n, m) - 1
        return _along(full, 0, start, start + k)
    raise ValueError("Use one of 'valid', 'same', or 'full' for convolve/correlate mode")


def _check_mode(mode):
    if mode not in ("full", "same", "valid"):
        raise ValueError("Use one of 'valid', 'same', or 'full' for convolve/correlate mode")


def correlate(a, v, mode="valid"):
    """Cross-correlation of two 1-D sequences: z[k] = sum_n a[n + k] * conj(v[n])."""
    _check_mode(mode)
    v = as_operand(v)
    if dtypes.is_complex(aval(v).dtype):
        from ._ufuncs import conjugate
        v = conjugate(v)
    full, n, m = _correlate_full(a, v)
    return _mode_slice(full, n, m, mode, reversed_=m > n)


def convolve(a, v, mode="full"):
    """Discrete linear convolution of two 1-D sequences."""
    _check_mode(mode)
    v = as_operand(v)
    if len(shape(v)) == 1:
        from ._shape import flip
        v = flip(v)
    full, n, m = _correlate_full(a, v)
    return _mode_slice(full, n, m, mode)


def interp(x, xp, fp, left=None, right=None, period=None):
    """Piecewise-linear interpolation as numpy.interp (float64 result). `x`, `xp` and `fp`
    may be traced; `xp` must be increasing. Derivatives follow the segment each x is in."""
    if period is not None:
        raise NotImplementedError("tracejit.numpy.interp does not support period=")
    x = cast(as_operand(x), np.float64)
    xp = cast(as_operand(xp), np.float64)
    fp = as_operand(fp)  # complex values interpolate as NumPy's: complex128
    fp = cast(fp, np.complex128 if dtypes.is_complex(aval(fp).dtype) else np.float64)
    if len(shape(xp)) != 1 or len(shape(fp)) != 1:
        raise ValueError("object too deep for desired array" if max(len(shape(xp)),
                         len(shape(fp))) > 1 else "object of too small depth for desired "
                         "array")
    m = shape(xp)[0]
    if m == 0:
        raise ValueError("array of sample points is empty")
    if shape(fp)[0] != m:
        raise ValueError("fp and xp are not of the same length.")
    lo_value = getitem(fp, 0) if left is None else cast(as_operand(left), np.float64)
    hi_value = getitem(fp, -1) if right is None else cast(as_operand(right), np.float64)
    if m == 1:
        inside = add(multiply(x, 0.0), getitem(fp, 0))
    else:
        from ._shape import expand_dims
        count = sum(less_equal(xp, expand_dims(x, -1)), axis=-1)
        from ._ufuncs import clip
        j = clip(subtract(count, 1), 0, m - 2)
        x0, x1 = take(xp, j), take(xp, add(j, 1))
        f0, f1 = take(fp, j), take(fp, add(j, 1))
        slope = divide(subtract(f1, f0), subtract(x1, x0))
        inside = add(multiply(slope, subtract(x, x0)), f0)
    return where(less(x, getitem(xp, 0)), lo_value,
                 where(greater(x, getitem(xp, -1)), hi_value, inside))


def polyval(p, x):
    """Horner's rule, as numpy.polyval: p[0] * x**(n-1) + ... + p[n-1]."""
    from ._creation import asarray, zeros_like
    p, x = asarray(p), asarray(x)
    if len(shape(p)) == 0:
        raise TypeError("iteration over a 0-d array")
    y = zeros_like(x)
    for i in range(shape(p)[0]):
        y = add(multiply(y, x), getitem(p, i))
    return y


def trapezoid(y, x=None, dx=1.0, axis=-1):
    """Trapezoidal rule along `axis`, as numpy.trapezoid."""
    y = as_operand(y)
    nd = len(shape(y))
    if nd == 0:
        raise IndexError("too many indices for array: array is 0-dimensional, but 1 were "
                         "indexed")
    axis = normalize_axis(axis, nd)
    if x is None:
        d = dx
    else:
        x = as_operand(x)
        if len(shape(x)) == 1:
            d = diff(x)
            d = reshape(d, _axis_shape(nd, axis, shape(d)[0]))
        else:
            d = diff(x, axis=axis)
    y1, y0 = _along(y, axis, 1, None), _along(y, axis, None, -1)
    return sum(divide(multiply(d, add(y1, y0)), 2.0), axis=axis)


def piecewise(x, condlist, funclist, *args, **kw):
    """Like numpy.piecewise, with every function evaluated on all of `x` and its values
    selected by the conditions (later conditions win, as NumPy assigns them in order)."""
    x = as_operand(x)
    x_nd = len(shape(x))
    if isinstance(condlist, (Tracer, np.ndarray)):
        # An array of conditions: its rows are the conditions unless it has x's rank or less.
        if len(shape(condlist)) <= 1 and (x_nd != 0 or len(shape(condlist)) == 0):
            condlist = [condlist]
        else:
            condlist = [getitem(condlist, i) for i in range(shape(condlist)[0])]
    elif np.isscalar(condlist) or (not isinstance(condlist[0], (list, np.ndarray, Tracer))
                                   and x_nd != 0):
        condlist = [condlist]
    condlist = [as_operand(c) for c in condlist]
    n, n_funcs = len(condlist), len(funclist)
    if n == n_funcs - 1:
        others = logical_not(any(stack(condlist), axis=0)) if n else \
            np.ones(shape(x), bool)
        condlist = condlist + [others]
        n += 1
    elif n != n_funcs:
        raise ValueError(f"with {n} condition(s), either {n} or {n + 1} functions are "
                         "expected")
    dt = aval(x).dtype
    from ._creation import zeros_like
    y = zeros_like(x)
    for cond, fn in zip(condlist, funclist):
        if not dtypes.is_bool(aval(cond).dtype):
            cond = not_equal(cond, 0)
        value = fn(x, *args, **kw) if callable(fn) else fn
        y = where(cond, cast(as_operand(value), dt), y)
    from ._shape import broadcast_to
    return cast(broadcast_to(y, shape(x)), dt)





def cumulative_sum(x, /, *, axis=None, dtype=None, out=None, include_initial=False):
    """numpy.cumulative_sum: `axis` is required above 1-D; `include_initial` prepends 0."""
    from ._reductions import cumsum
    x = as_operand(x)
    nd = len(shape(x))
    if axis is None:
        if nd > 1:
            raise ValueError("For arrays which have more than one dimension ``axis`` "
                             "argument is required.")
        axis = 0
    if nd == 0:
        x, nd = reshape(x, (1,)), 1
    axis = normalize_axis(axis, nd)
    y = cumsum(x, axis=axis, dtype=dtype, out=out)
    if include_initial:
        from ._shape import pad
        widths = [(0, 0)] * nd
        widths[axis] = (1, 0)
        y = pad(y, widths)
    return y


# -- selection, NaN handling, comparisons ----------------------------------------------------

def select(condlist, choicelist, default=0):
    """numpy.select: the first true condition picks its choice; `default` elsewhere."""
    from ._base import result_dtype
    from ._shape import broadcast_arrays
    if len(condlist) != len(choicelist):
        raise ValueError("list of cases must be same length as list of conditions")
    if len(condlist) == 0:
        raise ValueError("select with an empty condition list is not possible")
    conds = [as_operand(c) for c in condlist]
    for i, c in enumerate(conds):
        if not dtypes.is_bool(aval(c).dtype):
            raise TypeError(f"invalid entry {i} in condlist: should be boolean ndarray")
    choices = [as_operand(c) for c in choicelist] + [as_operand(default)]
    dt = result_dtype(*choicelist, default)
    choices = [cast(c, dt) for c in choices]
    parts = broadcast_arrays(*conds, *choices)
    conds, choices = parts[:len(conds)], parts[len(conds):]
    y = choices[-1]
    for c, v in zip(conds[::-1], choices[-2::-1]):
        y = where(c, v, y)
    return y


def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    from ._ufuncs import isinf, isnan
    x = as_operand(x)
    dt = aval(x).dtype
    if dtypes.is_complex(dt):  # each part on its own, as NumPy
        from ..primitives import elementwise as ew
        parts = [nan_to_num(p, copy, nan, posinf, neginf) for p in (ew.real(x), ew.imag(x))]
        return ew.complex_(*parts)
    if not dtypes.is_float(dt):
        return x
    info = np.finfo(dt)
    hi = info.max if posinf is None else posinf
    lo = info.min if neginf is None else neginf
    y = where(isnan(x), cast(as_operand(nan), dt), x)
    y = where(isinf(x), where(greater(x, 0), cast(as_operand(hi), dt),
                              cast(as_operand(lo), dt)), y)
    return y


def _nan_replaced(a, value):
    from ._ufuncs import isnan
    a = as_operand(a)
    if not dtypes.is_inexact(aval(a).dtype):
        return a, None
    mask = isnan(a)
    return where(mask, cast(as_operand(value), aval(a).dtype), a), mask


def nansum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    x, _ = _nan_replaced(a, 0.0)
    return sum(x, axis=axis, dtype=dtype, out=out, keepdims=keepdims, initial=initial,
               where=where)


def nanprod(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    from ._reductions import prod
    x, _ = _nan_replaced(a, 1.0)
    return prod(x, axis=axis, dtype=dtype, out=out, keepdims=keepdims, initial=initial,
                where=where)


def nancumsum(a, axis=None, dtype=None, out=None):
    from ._reductions import cumsum
    return cumsum(_nan_replaced(a, 0.0)[0], axis=axis, dtype=dtype, out=out)


def nancumprod(a, axis=None, dtype=None, out=None):
    from ._reductions import cumprod
    return cumprod(_nan_replaced(a, 1.0)[0], axis=axis, dtype=dtype, out=out)


def _nan_count(mask, a, axis, keepdims):
    if mask is None:
        from ._creation import ones_like
        return sum(cast(ones_like(a), np.float64), axis=axis, keepdims=keepdims)
    return sum(cast(logical_not(mask), np.float64), axis=axis, keepdims=keepdims)


def nanmean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=None):
    """Mean of the non-NaN entries; NaN where a slice has none (as NumPy, which also
    warns)."""
    from ._reductions import mean
    if out is not None or where is not None:
        raise NotImplementedError("tracejit.numpy.nanmean does not support out= or where=")
    a = as_operand(a)
    x, mask = _nan_replaced(a, 0.0)
    if mask is None:
        return mean(a, axis=axis, dtype=dtype, keepdims=keepdims)
    dt = np.dtype(dtype) if dtype is not None else aval(a).dtype
    total = sum(x, axis=axis, dtype=dt, keepdims=keepdims)
    return divide(total, cast(_nan_count(mask, a, axis, keepdims), dt))


def nanvar(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None,
           mean=None, correction=None):
    from ._reductions import var
    if out is not None or where is not None or mean is not None:
        raise NotImplementedError("tracejit.numpy.nanvar does not support out=, where= or "
                                  "mean=")
    if correction is not None:
        ddof = correction
    a = as_operand(a)
    x, mask = _nan_replaced(a, 0.0)
    if mask is None:
        return var(a, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims)
    dt = np.dtype(dtype) if dtype is not None else aval(a).dtype
    x = cast(x, dt)
    count = cast(_nan_count(mask, a, axis, True), dt)
    m = divide(sum(x, axis=axis, keepdims=True), count)
    dev = _where(mask, 0.0, subtract(x, m))
    ss = sum(squared_modulus(dev), axis=axis, keepdims=keepdims)  # real, as NumPy's
    dt = dtypes.real_dtype(dt)
    n = cast(_nan_count(mask, a, axis, keepdims), dt)
    from ._ufuncs import maximum
    return divide(ss, maximum(subtract(n, ddof), 0.0))


def nanstd(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None,
           mean=None, correction=None):
    from ._ufuncs import sqrt
    return sqrt(nanvar(a, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims,
                       where=where, mean=mean, correction=correction))


def _nan_extremum(name, reduce_name, fill):
    def fn(a, axis=None, out=None, keepdims=False, initial=None, where=None):
        from . import _reductions
        reduce = getattr(_reductions, reduce_name)
        a = as_operand(a)
        x, mask = _nan_replaced(a, fill)
        r = reduce(x, axis=axis, out=out, keepdims=keepdims, initial=initial, where=where)
        if mask is None:
            return r
        from ._reductions import all as all_
        return _where(all_(mask, axis=axis, keepdims=keepdims), np.nan, r)
    fn.__name__ = name
    return fn


def _where(c, x, y):
    return where(c, x, y)


nanmax = _nan_extremum("nanmax", "max", -np.inf)
nanmin = _nan_extremum("nanmin", "min", np.inf)


def _nan_arg_extremum(name, reduce_name, fill):
    def fn(a, axis=None, out=None, *, keepdims=False):
        from . import _reductions
        reduce = getattr(_reductions, reduce_name)
        a = as_operand(a)
        x, mask = _nan_replaced(a, fill)
        if mask is not None and not isinstance(mask, Tracer):
            if np.any(np.all(np.asarray(mask), axis=axis)):
                raise ValueError("All-NaN slice encountered")
        return reduce(x, axis=axis, out=out, keepdims=keepdims)
    fn.__name__ = name
    return fn


nanargmax = _nan_arg_extremum("nanargmax", "argmax", -np.inf)
nanargmin = _nan_arg_extremum("nanargmin", "argmin", np.inf)


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    from ._base import result_dtype
    from ._ufuncs import absolute, equal, isfinite, isnan, logical_and, logical_or
    a, b = as_operand(a), as_operand(b)
    dt = result_dtype(a, b, 1.0)
    a, b = cast(a, dt), cast(b, dt)
    close = less_equal(absolute(subtract(a, b)), add(atol, multiply(rtol, absolute(b))))
    r = logical_or(logical_and(logical_and(isfinite(a), isfinite(b)), close), equal(a, b))
    if equal_nan:
        r = logical_or(r, logical_and(isnan(a), isnan(b)))
    return r


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    from ._reductions import all as all_
    r = all_(isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))
    return r if isinstance(r, Tracer) else bool(r)


# -- complex parts --------------------------------------------------------------------------

def _is_complex(x) -> bool:
    return dtypes.is_complex(aval(x).dtype)


def real(val):
    """The real part; real arrays are returned as they are."""
    from ..primitives import elementwise as ew
    val = as_operand(val)
    return ew.real(val) if _is_complex(val) else val


def squared_modulus(x):
    """|x|²: x·x for real values, re(x x̄) for complex ones (in the real dtype)."""
    from ._ufuncs import conjugate, multiply
    x = as_operand(x)
    return real(multiply(conjugate(x), x)) if _is_complex(x) else multiply(x, x)


def imag(val):
    """The imaginary part; zeros of the same dtype for real arrays."""
    from ..primitives import elementwise as ew
    from ._creation import zeros_like
    val = as_operand(val)
    return ew.imag(val) if _is_complex(val) else zeros_like(val)


def angle(z, deg=False):
    """The argument: atan2(imag, real). For a real x it is 0 for x >= +0 and pi for x < 0
    and -0.0, NaN for NaN; its derivative there is 0."""
    from ..primitives import elementwise as ew
    from ..primitives.structural import stop_gradient
    from ._creation import zeros_like
    from ._ufuncs import arctan2
    z = as_operand(z)
    if _is_complex(z):
        r = arctan2(ew.imag(z), ew.real(z))
    else:
        dt = aval(z).dtype if dtypes.is_float(aval(z).dtype) else np.dtype(np.float64)
        # atan2(+0, x) tells -0.0 from +0.0; its derivative is 0 (stopped: 0/0 at x = 0).
        z = stop_gradient(cast(z, dt))
        r = arctan2(zeros_like(z), z)
    return multiply(r, 180.0 / np.pi) if deg else r


def real_if_close(a, tol=100):
    """Complex arrays whose imaginary parts are all within `tol` machine epsilons of zero
    become real. Which it is decides the result's dtype, so a traced complex array has no
    answer here (ConcretizationError)."""
    a = as_operand(a)
    if not _is_complex(a):
        return a
    if isinstance(a, Tracer):
        from ..errors import concretization_error
        raise concretization_error(aval(a), "real_if_close (its result dtype depends on the "
                                   "values)")
    return np.real_if_close(a, tol=tol)


# -- r_ and c_ -------------------------------------------------------------------------------

class _Concatenator:
    """numpy.r_ / numpy.c_: slices become ranges (a complex step is a point count), scalars
    and arrays are raised to `ndmin` dimensions and joined along `axis`. A leading string
    'axis[,ndmin[,trans1d]]' overrides the defaults."""

    def __init__(self, axis, ndmin, trans1d):
        self.axis, self.ndmin, self.trans1d = axis, ndmin, trans1d

    def __getitem__(self, key):
        from ._creation import asarray
        if not isinstance(key, tuple):
            key = (key,)
        axis, ndmin, trans1d = self.axis, self.ndmin, self.trans1d
        items = list(key)
        if items and isinstance(items[0], str):
            spec = items.pop(0)
            if spec in ("r", "c"):
                raise NotImplementedError("tracejit.numpy.r_ does not support matrix "
                                          "directives 'r'/'c'")
            try:
                vals = [int(v) for v in spec.split(",")]
            except ValueError:
                raise ValueError(f"unknown special directive {spec!r}") from None
            axis = vals[0]
            if len(vals) > 1:
                ndmin = vals[1]
            if len(vals) > 2:
                trans1d = vals[2]
        parts = []
        for item in items:
            if isinstance(item, slice):
                start = 0 if item.start is None else item.start
                step = 1 if item.step is None else item.step
                if isinstance(step, complex):
                    arr = np.linspace(start, item.stop, int(abs(step)))
                else:
                    arr = np.arange(start, item.stop, step)
                x = asarray(arr)
            elif isinstance(item, str):
                raise ValueError("special directives must be the first entry.")
            else:
                x = asarray(item)
            nd = len(shape(x))
            if nd < ndmin:
                x = reshape(x, (1,) * (ndmin - nd) + tuple(shape(x)))
                if trans1d != -1:
                    k2, k1 = ndmin - nd, trans1d
                    if k1 < 0:
                        k1 += k2 + 1
                    axes = list(range(ndmin))
                    from ._shape import transpose
                    x = transpose(x, axes[:k1] + axes[k2:] + axes[k1:k2])
            parts.append(x)
        return concatenate(parts, axis=axis)

    def __len__(self):
        return 0


r_ = _Concatenator(0, 1, -1)
c_ = _Concatenator(-1, 2, 0)
