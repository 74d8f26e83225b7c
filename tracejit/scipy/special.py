"""`scipy.special` on traced values: erf, erfc, erfinv, gammaln, digamma, polygamma, xlogy,
xlog1py, expit, logit, logsumexp (with `b=`), softmax, log_softmax.

Each follows SciPy's promotion (ints and bools compute in float64, float32 stays float32)
and broadcasting, differentiates to any order (the derivative rules are rows of
`primitives/special.py`) and compiles into fused loops. erf, erfc and digamma/psi take
complex operands too (complex64 stays complex64, as in SciPy), differentiated as the
holomorphic functions they are (JAX's convention).
"""

from __future__ import annotations

import numpy as np

from .. import nn
from .. import numpy as tnp
from ..api import stop_gradient
from ..numpy._base import as_operand, cast, promote_args
from ..primitives import elementwise as ew
from ..primitives import special as sp

__all__ = ["digamma", "erf", "erfc", "erfinv", "expit", "gammaln", "log_softmax", "logit",
           "logsumexp", "polygamma", "psi", "softmax", "xlog1py", "xlogy"]


def _float_dtype(*xs) -> np.dtype:
    """SciPy's result dtype: float32 only when every operand is float32 (or a Python
    number beside one), float64 otherwise."""
    dts = [np.dtype(x.dtype) for x in xs if hasattr(x, "dtype")
           and not isinstance(x, (bool, int, float))]
    if any(d.kind == "c" for d in dts) or any(isinstance(x, complex) for x in xs):
        raise TypeError("this tracejit.scipy.special function takes real operands, not "
                        "complex (erf, erfc, digamma/psi, xlogy and xlog1py take complex ones)")
    if dts and all(d == np.float32 for d in dts):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _inexact_dtype(x) -> np.dtype:
    """`_float_dtype`, and for a complex operand SciPy's complex loop: complex64 for
    complex64, complex128 otherwise (a Python complex too)."""
    if isinstance(x, complex):
        return np.dtype(np.complex128)
    dtype = np.dtype(getattr(x, "dtype", np.float64))
    if dtype.kind == "c":
        return np.dtype(np.complex64 if dtype == np.complex64 else np.complex128)
    return _float_dtype(x)


def _unary(prim_fn, name, complex_too=False):
    dtype_of = _inexact_dtype if complex_too else _float_dtype

    def fn(x, /):
        x = as_operand(x)
        return prim_fn(cast(x, dtype_of(x)))
    fn.__name__ = name
    fn.__doc__ = f"Like scipy.special.{name}."
    return fn


def _binary(prim_fn, name):
    def fn(x, y, /):
        x, y = as_operand(x), as_operand(y)
        (x, y), _ = promote_args(x, y, dtype=_float_dtype(x, y))
        return prim_fn(x, y)
    fn.__name__ = name
    fn.__doc__ = f"Like scipy.special.{name}."
    return fn


erf = _unary(sp.erf, "erf", complex_too=True)
erfc = _unary(sp.erfc, "erfc", complex_too=True)
erfinv = _unary(sp.erfinv, "erfinv")
gammaln = _unary(sp.lgamma, "gammaln")
digamma = _unary(sp.digamma, "digamma", complex_too=True)
psi = digamma


def _complex_too(real_fn, log_fn):
    """`real_fn`, and for complex operands x · log_fn(y), 0 where x is 0 (SciPy's complex
    loops), the log's argument kept away from its pole there for the derivative."""
    def fn(x, y, /):
        x, y = as_operand(x), as_operand(y)
        if not any(isinstance(v, complex) or np.dtype(getattr(v, "dtype", np.float64)).kind == "c"
                   for v in (x, y)):
            return real_fn(x, y)
        dtype = tnp.result_type(x, y, np.complex64)
        if dtype == np.complex64 and not all(getattr(v, "dtype", None) == np.complex64
                                             for v in (x, y)):
            dtype = np.dtype(np.complex128)  # SciPy: complex64 only when both are
        x, y = tnp.astype(tnp.asarray(x), dtype), tnp.astype(tnp.asarray(y), dtype)
        zero = tnp.equal(x, 0)
        return tnp.where(zero, 0.0, x * log_fn(tnp.where(zero, 0.5, y)))
    fn.__name__, fn.__doc__ = real_fn.__name__, real_fn.__doc__
    return fn


xlogy = _complex_too(_binary(sp.xlogy, "xlogy"), tnp.log)
xlog1py = _complex_too(_binary(sp.xlog1py, "xlog1py"), tnp.log1p)
expit = _unary(ew.logistic, "expit")


def polygamma(n, x, /):
    """Like scipy.special.polygamma, for a whole order n >= 0 given as a Python or NumPy
    integer (n = 0 is digamma). The order is not differentiated."""
    if isinstance(n, (np.ndarray, np.generic)) and np.ndim(n) == 0:
        n = n.item()
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise TypeError(f"polygamma: the order n must be a whole number >= 0 given as a "
                        f"Python int, got {n!r}")
    if n == 0:
        return digamma(x)
    x = as_operand(x)
    x = cast(x, _float_dtype(x))
    return sp.polygamma(np.asarray(float(n), x.dtype)[()], x)


def logit(x, /):
    """log(x / (1 - x)), the inverse of expit."""
    x = as_operand(x)
    x = cast(x, _float_dtype(x))
    return tnp.log(x) - tnp.log1p(-x)


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    """Like scipy.special.logsumexp: log(sum(b * exp(a))) over `axis`, shifted by the max
    of `a` so that large entries do not overflow; with `return_sign`, (log|s|, sign(s))."""
    a = as_operand(a)
    if b is None:
        if return_sign:
            out = nn.logsumexp(a, axis=axis, keepdims=keepdims)
            return out, tnp.ones_like(out)
        return nn.logsumexp(a, axis=axis, keepdims=keepdims)
    b = as_operand(b)
    dtype = _float_dtype(a, b)
    a, b = cast(a, dtype), cast(b, dtype)
    shape = np.broadcast_shapes(np.shape(a), np.shape(b))
    a, b = tnp.broadcast_to(a, shape), tnp.broadcast_to(b, shape)
    # Where b == 0 the term is absent: it must not set the shift, nor carry exp(a)'s inf.
    a_on = tnp.where(b != 0, a, -np.inf)
    m = stop_gradient(tnp.max(a_on, axis=axis, keepdims=True))
    m = tnp.where(tnp.isfinite(m), m, 0.0)
    s = tnp.sum(tnp.where(b != 0, b * tnp.exp(a_on - m), 0.0), axis=axis, keepdims=True)
    sign = tnp.sign(s)
    out = tnp.log(tnp.abs(s)) + m
    if not keepdims:
        if axis is None:
            out, sign = tnp.reshape(out, ()), tnp.reshape(sign, ())
        else:
            out, sign = tnp.squeeze(out, axis=axis), tnp.squeeze(sign, axis=axis)
    if return_sign:
        return out, sign
    return out


def softmax(x, axis=None):
    """Like scipy.special.softmax (over all entries when axis is None)."""
    x = as_operand(x)
    if axis is None:
        flat = tnp.reshape(x, (-1,))
        return tnp.reshape(nn.softmax(flat, axis=0), np.shape(x))
    return nn.softmax(x, axis=axis)


def log_softmax(x, axis=None):
    """Like scipy.special.log_softmax (over all entries when axis is None)."""
    x = as_operand(x)
    if axis is None:
        flat = tnp.reshape(x, (-1,))
        return tnp.reshape(nn.log_softmax(flat, axis=0), np.shape(x))
    return nn.log_softmax(x, axis=axis)
