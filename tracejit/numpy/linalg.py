"""`tracejit.numpy.linalg`: NumPy's `numpy.linalg` on traced values (stacks of matrices in
the last two axes, broadcasting batch dimensions), differentiable.

Decompositions are primitives (`primitives/decompositions.py`); `det`, `matrix_power`,
`norm`, `multi_dot`, `eigvalsh` are compositions of them and of products. `svd`, `qr`,
`eig`, `lstsq` and `pinv` are not here yet: calling them raises NotImplementedError.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..primitives import decompositions as dc
from ._base import as_operand


class SlogdetResult(NamedTuple):
    sign: object
    logabsdet: object


class EighResult(NamedTuple):
    eigenvalues: object
    eigenvectors: object


def _float_matrix(a, name: str):
    from . import asarray, astype, result_type
    a = asarray(as_operand(a))
    if a.ndim < 2:
        raise ValueError(f"{name}: {a.ndim}-dimensional array given; the array must be at "
                         "least two-dimensional")
    if a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{name}: last 2 dimensions of the array must be square, got shape "
                         f"{tuple(a.shape)}")
    return astype(a, result_type(a, 0.0))


def solve(a, b):
    """x with a @ x = b. As in NumPy 2, `b` is a vector (one right-hand side per matrix)
    only when it is 1-d; otherwise its last two axes are the right-hand sides."""
    from . import asarray, astype, broadcast_to, result_type
    a = _float_matrix(a, "solve")
    b = asarray(as_operand(b))
    dtype = result_type(a, b, 0.0)
    a, b = astype(a, dtype), astype(b, dtype)
    n = a.shape[-1]
    vector = b.ndim == 1
    if vector:
        b = b[:, None]
    if b.shape[-2] != n:
        raise ValueError(f"solve: the right-hand side of shape {tuple(b.shape)} does not "
                         f"match the matrix of shape {tuple(a.shape)} (axis -2 of b must be "
                         f"{n})")
    batch = np.broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2]))
    a = broadcast_to(a, batch + (n, n))
    b = broadcast_to(b, batch + tuple(b.shape[-2:]))
    x = dc.solve(a, b)
    return x[..., 0] if vector else x


def inv(a):
    from ..core import bind
    return bind(dc.inv_p, _float_matrix(a, "inv"))


def slogdet(a):
    from ..core import bind
    sign, logabs = bind(dc.slogdet_p, _float_matrix(a, "slogdet"))
    return SlogdetResult(sign, logabs)


def det(a):
    """sign · exp(log|det|): the derivative is det · tr(a⁻¹ da)."""
    from . import exp
    sign, logabs = slogdet(a)
    return sign * exp(logabs)


def cholesky(a, upper=False):
    """The lower factor L with a = L Lᵀ (`upper=True`: Lᵀ). Only the lower triangle of `a`
    is read, as in NumPy."""
    from ..core import bind
    a = _float_matrix(a, "cholesky")
    lo = bind(dc.cholesky_p, _lower_symmetric(a))
    return dc._mT(lo) if upper else lo


def _lower_symmetric(a):
    """The symmetric matrix NumPy's LAPACK calls see: the lower triangle, mirrored (so a
    derivative reaches only the entries they read)."""
    from . import tril
    return tril(a) + dc._mT(tril(a, -1))


def eigh(a, UPLO="L"):
    from ..core import bind
    a = _float_matrix(a, "eigh")
    if UPLO not in ("L", "U"):
        raise ValueError(f"eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    sym = _lower_symmetric(a if UPLO == "L" else dc._mT(a))
    w, v = bind(dc.eigh_p, sym)
    return EighResult(w, v)


def eigvalsh(a, UPLO="L"):
    return eigh(a, UPLO).eigenvalues


def matrix_power(a, n):
    """a multiplied by itself n times (by squaring); n < 0 inverts first."""
    from . import broadcast_to, eye, matmul
    a = _float_matrix(a, "matrix_power")
    if not isinstance(n, (int, np.integer)):
        raise TypeError(f"matrix_power: exponent must be an integer, got {type(n).__name__}")
    if n == 0:
        return broadcast_to(eye(a.shape[-1], dtype=a.dtype), tuple(a.shape))
    if n < 0:
        a, n = inv(a), -n
    result, base = None, a
    while n:
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return result


def multi_dot(arrays):
    from . import matmul
    arrays = list(arrays)
    if len(arrays) < 2:
        raise ValueError("multi_dot: expecting at least two arrays")
    out = arrays[0]
    for x in arrays[1:]:
        out = matmul(out, x)
    return out


def norm(x, ord=None, axis=None, keepdims=False):
    """Vector norms (any `ord`), and the matrix norms 'fro', 1, -1, inf, -inf; the spectral
    and nuclear norms (ord 2, -2, 'nuc') need an SVD, which tracejit does not have yet."""
    from . import abs, asarray, astype, max, min, ndim, power, result_type, sqrt, sum
    x = asarray(as_operand(x))
    x = astype(x, result_type(x, 0.0))
    if axis is None:
        if ord is None or (ord in ("fro", "f") and ndim(x) == 2):
            return _keep(sqrt(sum(x * x)), x, None, keepdims, full=True)
        if ndim(x) == 1:
            axis = (0,)
        elif ndim(x) == 2:
            axis = (0, 1)
        else:
            raise ValueError("norm: improper number of dimensions to norm")
    axis = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    axis = tuple(int(a) % ndim(x) for a in axis)
    if len(axis) == 1:
        ax = axis[0]
        if ord is None or ord == 2:
            out = sqrt(sum(x * x, axis=ax))
        elif ord == np.inf:
            out = max(abs(x), axis=ax)
        elif ord == -np.inf:
            out = min(abs(x), axis=ax)
        elif ord == 0:
            out = sum(astype(x != 0, x.dtype), axis=ax)
        elif ord == 1:
            out = sum(abs(x), axis=ax)
        elif isinstance(ord, str):
            raise ValueError(f"norm: invalid norm order {ord!r} for vectors")
        else:
            out = power(sum(power(abs(x), ord), axis=ax), 1.0 / ord)
        return _keep(out, x, axis, keepdims)
    if len(axis) != 2:
        raise ValueError("norm: improper number of dimensions to norm")
    r, c = axis
    if ord in (None, "fro", "f"):
        out = sqrt(sum(x * x, axis=axis))
    elif ord in (1, -1):
        colsum = sum(abs(x), axis=r)
        out = (max if ord == 1 else min)(colsum, axis=c - 1 if c > r else c)
    elif ord in (np.inf, -np.inf):
        rowsum = sum(abs(x), axis=c)
        out = (max if ord == np.inf else min)(rowsum, axis=r - 1 if r > c else r)
    elif ord in (2, -2, "nuc"):
        raise NotImplementedError(f"norm(ord={ord!r}) of a matrix needs an SVD, which "
                                  "tracejit.numpy.linalg does not have yet")
    else:
        raise ValueError(f"norm: invalid norm order {ord!r} for matrices")
    return _keep(out, x, axis, keepdims)


def _keep(out, x, axis, keepdims, full=False):
    from . import reshape
    if not keepdims:
        return out
    if full or axis is None:
        return reshape(out, (1,) * x.ndim)
    shape = [1 if d in axis else s for d, s in enumerate(x.shape)]
    return reshape(out, tuple(shape))


def _missing(name):
    def fn(*args, **kwargs):
        raise NotImplementedError(f"tracejit.numpy.linalg.{name} is not implemented yet "
                                  "(solve, inv, det, slogdet, cholesky, eigh, eigvalsh, "
                                  "matrix_power, multi_dot and norm are)")
    fn.__name__ = name
    return fn


svd = _missing("svd")
qr = _missing("qr")
eig = _missing("eig")
eigvals = _missing("eigvals")
lstsq = _missing("lstsq")
pinv = _missing("pinv")
matrix_rank = _missing("matrix_rank")
