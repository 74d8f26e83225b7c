"""NumPy functions that are compositions of the rest: the array-API names of NumPy 2
(acos, pow, vecdot, matvec, ...), a few ufuncs (fmod, divmod, modf, ldexp, isposinf, ...),
statistics (average, ptp, cov, corrcoef, digitize, ediff1d), grids and special matrices
(meshgrid, indices, ix_, tri, the *_indices functions, diagflat, vander, logspace,
geomspace) and the window functions. Each is NumPy's definition written over
tracejit.numpy, so derivatives and compiled code come from the functions it uses.
"""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ._base import as_operand, aval


def _tnp():
    from .. import numpy as tnp
    return tnp


# -- NumPy 2 names ---------------------------------------------------------------------------

def _alias(name: str, target: str):
    def fn(*args, **kwargs):
        return getattr(_tnp(), target)(*args, **kwargs)
    fn.__name__ = name
    fn.__doc__ = f"Like numpy.{name} (NumPy's other name for {target})."
    return fn


acos = _alias("acos", "arccos")
acosh = _alias("acosh", "arccosh")
asin = _alias("asin", "arcsin")
asinh = _alias("asinh", "arcsinh")
atan = _alias("atan", "arctan")
atan2 = _alias("atan2", "arctan2")
atanh = _alias("atanh", "arctanh")
pow = _alias("pow", "power")
bitwise_not = _alias("bitwise_not", "invert")
bitwise_invert = _alias("bitwise_invert", "invert")
row_stack = _alias("row_stack", "vstack")


def asanyarray(a, dtype=None, order=None, *, like=None):
    return _tnp().asarray(a, dtype=dtype)


def ascontiguousarray(a, dtype=None, *, like=None):
    """Layout is the compiler's business: the values, at least 1-d as NumPy returns them."""
    return _tnp().atleast_1d(_tnp().asarray(a, dtype=dtype))


def asfortranarray(a, dtype=None, *, like=None):
    return _tnp().atleast_1d(_tnp().asarray(a, dtype=dtype))


def matrix_transpose(x, /):
    tnp = _tnp()
    x = tnp.asarray(as_operand(x))
    if x.ndim < 2:
        raise ValueError(f"matrix_transpose: input must be at least 2-dimensional, got shape "
                         f"{tuple(x.shape)}")
    return tnp.swapaxes(x, -1, -2)


def vecdot(x1, x2, /, *, axis=-1):
    """Sum over `axis` of conj(x1) · x2, broadcasting the other axes."""
    tnp = _tnp()
    return tnp.sum(tnp.multiply(tnp.conjugate(x1), x2), axis=axis)


def matvec(x1, x2, /):
    """Matrix-vector products over stacks: (..., m, n) and (..., n) give (..., m)."""
    tnp = _tnp()
    return tnp.matmul(x1, tnp.asarray(as_operand(x2))[..., None])[..., 0]


def vecmat(x1, x2, /):
    """Vector-matrix products over stacks: (..., m) and (..., m, n) give (..., n); a
    complex vector is conjugated, as in NumPy."""
    tnp = _tnp()
    v = tnp.conjugate(tnp.asarray(as_operand(x1)))
    return tnp.matmul(v[..., None, :], x2)[..., 0, :]


def unstack(x, /, *, axis=0):
    tnp = _tnp()
    x = tnp.asarray(as_operand(x))
    return tuple(tnp.moveaxis(x, axis, 0)[i] for i in range(x.shape[axis]))


def cumulative_prod(x, /, *, axis=None, dtype=None, include_initial=False):
    tnp = _tnp()
    x = tnp.asarray(as_operand(x))
    if axis is None:
        if x.ndim > 1:
            raise ValueError("cumulative_prod: axis must be given for arrays of more than one "
                             "dimension")
        axis = 0
    out = tnp.cumprod(x, axis=axis, dtype=dtype)
    if include_initial:
        shape = list(out.shape)
        shape[axis] = 1
        out = tnp.concatenate([tnp.ones(tuple(shape), dtype=out.dtype), out], axis=axis)
    return out


def broadcast_shapes(*shapes):
    return np.broadcast_shapes(*shapes)


def array_equal(a1, a2, equal_nan=False):
    """Whether the shapes are equal and every element is (a traced bool when traced)."""
    tnp = _tnp()
    a1, a2 = tnp.asarray(as_operand(a1)), tnp.asarray(as_operand(a2))
    if tuple(a1.shape) != tuple(a2.shape):
        return tnp.asarray(False)
    same = tnp.equal(a1, a2)
    if equal_nan:
        same = same | (tnp.isnan(a1) & tnp.isnan(a2))
    return tnp.all(same)


def array_equiv(a1, a2):
    tnp = _tnp()
    a1, a2 = tnp.asarray(as_operand(a1)), tnp.asarray(as_operand(a2))
    try:
        np.broadcast_shapes(tuple(a1.shape), tuple(a2.shape))
    except ValueError:
        return tnp.asarray(False)
    return tnp.all(tnp.equal(a1, a2))


# -- ufuncs ----------------------------------------------------------------------------------

def fmod(x1, x2, /):
    """C's fmod: the remainder has the sign of x1 (np.mod's has the sign of x2). Floats
    have their own primitive (fmod is exact, and mod − x2 need not be); for integers,
    where they differ, fmod = mod − x2."""
    from .. import dtypes
    from ..primitives import elementwise as ew
    from ._base import promote_args, ufunc_dtype
    tnp = _tnp()
    a, b = as_operand(x1), as_operand(x2)
    dtype = ufunc_dtype(np.fmod, a, b)
    if dtypes.is_float(dtype):
        (a, b), _ = promote_args(a, b, dtype=dtype)
        return ew.fmod(a, b)
    x1 = tnp.asarray(as_operand(x1))
    r = tnp.mod(x1, x2)
    fix = (r != 0) & ((r < 0) != (x1 < 0))
    return tnp.where(fix, r - x2, r)


def divmod(x1, x2, /):
    tnp = _tnp()
    return tnp.floor_divide(x1, x2), tnp.mod(x1, x2)


def modf(x, /):
    """(fractional part, integral part), both with the sign of x."""
    tnp = _tnp()
    x = tnp.asarray(as_operand(x))
    finite = tnp.where(tnp.isinf(x), 0.0, x)  # the fraction of ±inf is ±0
    return tnp.copysign(finite - tnp.trunc(finite), x), tnp.trunc(x)


def ldexp(x1, x2, /):
    """x1 · 2**x2 (exact, as long as the result is a normal number)."""
    tnp = _tnp()
    x1 = tnp.asarray(as_operand(x1))
    dtype = tnp.result_type(x1, 1.0) if x1.dtype.kind != "f" else x1.dtype
    return tnp.multiply(tnp.astype(x1, dtype),
                        tnp.exp2(tnp.astype(tnp.asarray(as_operand(x2)), dtype)))


def isposinf(x, out=None):
    tnp = _tnp()
    return tnp.isinf(x) & ~tnp.signbit(x)


def isneginf(x, out=None):
    tnp = _tnp()
    return tnp.isinf(x) & tnp.signbit(x)


def isreal(x):
    """True where the imaginary part is zero (everywhere for real arrays)."""
    tnp = _tnp()
    return tnp.equal(tnp.imag(tnp.asarray(as_operand(x))), 0)


def iscomplex(x):
    tnp = _tnp()
    x = tnp.asarray(as_operand(x))
    if not iscomplexobj(x):
        return tnp.zeros(np.shape(x), dtype=bool)
    return tnp.not_equal(tnp.imag(x), 0)


def isrealobj(x):
    return not iscomplexobj(x)


def iscomplexobj(x):
    return dtypes.is_complex(aval(as_operand(x)).dtype)


# -- statistics ------------------------------------------------------------------------------

def average(a, axis=None, weights=None, returned=False, *, keepdims=False):
    """The (weighted) mean; `returned` also gives the sum of the weights."""
    tnp = _tnp()
    a = tnp.asarray(as_operand(a))
    a = tnp.astype(a, tnp.result_type(a, 0.0))
    if weights is None:
        avg = tnp.mean(a, axis=axis, keepdims=keepdims)
        count = a.size if axis is None else int(np.prod([a.shape[k] for k in
                                                          np.atleast_1d(axis)]))
        total = tnp.full(np.shape(avg), float(count), dtype=avg.dtype)
    else:
        w = tnp.asarray(as_operand(weights))
        if tuple(w.shape) != tuple(a.shape):
            if axis is None:
                raise TypeError("average: axis must be specified when shapes of a and weights "
                                "differ")
            if w.ndim != 1 or w.shape[0] != a.shape[axis]:
                raise ValueError("average: shape of weights must be consistent with shape of "
                                 "a along specified axis")
            shape = [1] * a.ndim
            shape[axis] = w.shape[0]
            w = tnp.reshape(w, tuple(shape))
        w = tnp.astype(tnp.broadcast_to(w, tuple(a.shape)), tnp.result_type(a, w))
        total = tnp.sum(w, axis=axis, keepdims=keepdims)
        avg = tnp.sum(a * w, axis=axis, keepdims=keepdims) / total
    return (avg, total) if returned else avg


def ptp(a, axis=None, out=None, keepdims=False):
    tnp = _tnp()
    return tnp.max(a, axis=axis, keepdims=keepdims) - tnp.min(a, axis=axis, keepdims=keepdims)


def cov(m, y=None, rowvar=True, bias=False, ddof=None, fweights=None, aweights=None, *,
        dtype=None):
    """The covariance matrix of the variables in the rows of m (columns if not `rowvar`),
    with NumPy's normalization (N − 1, N with `bias`, N − ddof) and frequency and
    observation weights."""
    tnp = _tnp()
    x = tnp.atleast_2d(tnp.asarray(as_operand(m)))
    if x.ndim > 2:
        raise ValueError("cov: m has more than 2 dimensions")
    yy = None if y is None else tnp.atleast_2d(tnp.asarray(as_operand(y)))
    if dtype is None:  # as NumPy: at least float64, float32 data included
        dtype = tnp.result_type(x, np.float64) if yy is None else \
            tnp.result_type(x, yy, np.float64)
    x = tnp.astype(x, dtype)
    if not rowvar and x.shape[0] != 1:
        x = tnp.transpose(x)
    if yy is not None:
        if not rowvar and yy.shape[0] != 1:
            yy = tnp.transpose(yy)
        x = tnp.concatenate([x, tnp.astype(yy, x.dtype)], axis=0)
    if ddof is None:
        ddof = 0 if bias else 1
    n = x.shape[1]
    w = None
    if fweights is not None:
        w = tnp.astype(tnp.asarray(as_operand(fweights)), x.dtype)
    if aweights is not None:
        aw = tnp.astype(tnp.asarray(as_operand(aweights)), x.dtype)
        w = aw if w is None else w * aw
    if w is None:
        avg = tnp.mean(x, axis=1)
        fact = n - ddof
        xc = x - avg[:, None]
        c = tnp.matmul(xc, tnp.conjugate(tnp.transpose(xc))) / fact
    else:
        wsum = tnp.sum(w)
        avg = tnp.sum(x * w, axis=1) / wsum
        if ddof == 0:
            fact = wsum
        elif aweights is None:
            fact = wsum - ddof
        else:
            aw = tnp.astype(tnp.asarray(as_operand(aweights)), x.dtype)
            fact = wsum - ddof * tnp.sum(w * aw) / wsum
        xc = x - avg[:, None]
        c = tnp.matmul(xc * w, tnp.conjugate(tnp.transpose(xc))) / fact
    return c[0, 0] if c.shape == (1, 1) else c


def corrcoef(x, y=None, rowvar=True, *, dtype=None):
    tnp = _tnp()
    c = cov(x, y, rowvar, dtype=dtype)
    if c.ndim == 0:
        return c / c
    d = tnp.sqrt(tnp.real(tnp.diagonal(c)))
    r = c / d[:, None] / d[None, :]
    if iscomplexobj(r):  # NumPy clips both parts
        return tnp.clip(tnp.real(r), -1.0, 1.0) + 1j * tnp.clip(tnp.imag(r), -1.0, 1.0)
    return tnp.clip(r, -1.0, 1.0)


def digitize(x, bins, right=False):
    """The index of the bin each x falls in, for monotonically increasing `bins` (for
    decreasing bins, the bins are reversed)."""
    tnp = _tnp()
    bins_c = np.asarray(bins) if not hasattr(bins, "aval") else None
    if bins_c is not None and bins_c.ndim == 1 and bins_c.size > 1 and \
            bins_c[0] > bins_c[-1]:
        n = bins_c.size
        return n - tnp.searchsorted(bins_c[::-1], x, side="left" if right else "right")
    return tnp.searchsorted(bins, x, side="left" if right else "right")


def ediff1d(ary, to_end=None, to_begin=None):
    tnp = _tnp()
    d = tnp.diff(tnp.ravel(ary))
    parts = []
    if to_begin is not None:
        parts.append(tnp.ravel(tnp.astype(tnp.asarray(as_operand(to_begin)), d.dtype)))
    parts.append(d)
    if to_end is not None:
        parts.append(tnp.ravel(tnp.astype(tnp.asarray(as_operand(to_end)), d.dtype)))
    return tnp.concatenate(parts) if len(parts) > 1 else d


# -- grids and special matrices --------------------------------------------------------------

def meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
    tnp = _tnp()
    if indexing not in ("xy", "ij"):
        raise ValueError("meshgrid: valid values for `indexing` are 'xy' and 'ij'.")
    xs = [tnp.ravel(x) for x in xi]
    nd = len(xs)
    shapes = []
    for i, x in enumerate(xs):
        s = [1] * nd
        s[i] = x.shape[0]
        shapes.append(s)
    if indexing == "xy" and nd > 1:
        for s in shapes:
            s[0], s[1] = s[1], s[0]
    out = [tnp.reshape(x, tuple(s)) for x, s in zip(xs, shapes)]
    if sparse:
        return tuple(out)
    full = np.broadcast_shapes(*[tuple(s) for s in shapes])
    return tuple(tnp.broadcast_to(x, full) for x in out)


def indices(dimensions, dtype=int, sparse=False):
    grid = np.indices(tuple(int(d) for d in np.atleast_1d(dimensions)), dtype, sparse)
    return tuple(_tnp().asarray(a) for a in grid) if sparse else _tnp().asarray(grid)


def ix_(*args):
    return tuple(_tnp().asarray(a) for a in np.ix_(*[np.asarray(a) for a in args]))


def tri(N, M=None, k=0, dtype=float, *, like=None):
    return _tnp().asarray(np.tri(N, M, k, dtype))


def tril_indices(n, k=0, m=None):
    return tuple(_tnp().asarray(a) for a in np.tril_indices(n, k, m))


def triu_indices(n, k=0, m=None):
    return tuple(_tnp().asarray(a) for a in np.triu_indices(n, k, m))


def tril_indices_from(arr, k=0):
    shape = _tnp().shape(arr)
    if len(shape) != 2:
        raise ValueError("tril_indices_from: input array must be 2-d")
    return tril_indices(shape[-2], k=k, m=shape[-1])


def triu_indices_from(arr, k=0):
    shape = _tnp().shape(arr)
    if len(shape) != 2:
        raise ValueError("triu_indices_from: input array must be 2-d")
    return triu_indices(shape[-2], k=k, m=shape[-1])


def diag_indices(n, ndim=2):
    return tuple(_tnp().asarray(a) for a in np.diag_indices(n, ndim))


def diag_indices_from(arr):
    shape = _tnp().shape(arr)
    if len(shape) < 2 or len(set(shape)) != 1:
        raise ValueError("diag_indices_from: all dimensions of input must be of equal length")
    return diag_indices(shape[0], len(shape))


def diagflat(v, k=0):
    tnp = _tnp()
    return tnp.diag(tnp.ravel(v), k)


def vander(x, N=None, increasing=False):
    tnp = _tnp()
    x = tnp.asarray(as_operand(x))
    if x.ndim != 1:
        raise ValueError("vander: x must be a one-dimensional array or sequence.")
    n = x.shape[0] if N is None else int(N)
    powers = np.arange(n) if increasing else np.arange(n)[::-1]
    if n == 0:
        return tnp.zeros((x.shape[0], 0), dtype=tnp.result_type(x, 1))
    return tnp.power(x[:, None], tnp.asarray(powers))


def logspace(start, stop, num=50, endpoint=True, base=10.0, dtype=None, axis=0):
    tnp = _tnp()
    y = tnp.linspace(start, stop, num=num, endpoint=endpoint, axis=axis)
    out = tnp.power(base, y)
    return out if dtype is None else tnp.astype(out, dtype)


def geomspace(start, stop, num=50, endpoint=True, dtype=None, axis=0):
    """Points evenly spaced on a log scale, the end points exact (as NumPy makes them);
    start and stop of one sign, not zero."""
    tnp = _tnp()
    start, stop = tnp.asarray(as_operand(start)), tnp.asarray(as_operand(stop))
    sign = tnp.sign(start)
    logs = tnp.linspace(tnp.log10(tnp.abs(start)), tnp.log10(tnp.abs(stop)), num=num,
                        endpoint=endpoint, axis=axis)
    out = sign * tnp.power(10.0, logs)
    if num > 0:
        idx = np.arange(num)
        ends = (idx == 0) * 1.0
        out = tnp.where(tnp.asarray(ends == 1), start, out)
        if endpoint and num > 1:
            out = tnp.where(tnp.asarray(idx == num - 1), stop, out)
    return out if dtype is None else tnp.astype(out, dtype)


def _window(fn):
    def window(M):
        return _tnp().asarray(fn(M))
    window.__name__ = fn.__name__
    window.__doc__ = f"numpy.{fn.__name__}(M): a constant of the program."
    return window


bartlett = _window(np.bartlett)
blackman = _window(np.blackman)
hamming = _window(np.hamming)
hanning = _window(np.hanning)
