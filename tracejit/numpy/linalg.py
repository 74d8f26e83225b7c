"""`tracejit.numpy.linalg`: NumPy's `numpy.linalg` on traced values (stacks of matrices in
the last two axes, broadcasting batch dimensions), differentiable.

Decompositions are primitives (`primitives/decompositions.py`); `det`, `matrix_power`,
`norm`, `multi_dot`, `eigvalsh`, `lstsq`, `pinv`, `matrix_rank` and `cond` are compositions
of them and of products. `pinv` has its own derivative (the pseudo-inverse's, valid where the
rank does not change), so `pinv` and `lstsq` differentiate at repeated singular values too.
Every function takes real and complex matrices; `eig` and `eigvals` always return complex
values.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import dtypes
from ..primitives import decompositions as dc
from ._base import as_operand


class SlogdetResult(NamedTuple):
    sign: object
    logabsdet: object


class EighResult(NamedTuple):
    eigenvalues: object
    eigenvectors: object


class SVDResult(NamedTuple):
    U: object
    S: object
    Vh: object


class QRResult(NamedTuple):
    Q: object
    R: object


class LstsqResult(NamedTuple):
    x: object
    residuals: object
    rank: object
    s: object


def _float_array(a, name: str, square: bool):
    """`a` as a floating-point (real or complex) stack of matrices; integers and booleans
    become float64, as in NumPy."""
    from . import asarray, astype, result_type
    a = asarray(as_operand(a))
    if a.ndim < 2:
        raise ValueError(f"{name}: {a.ndim}-dimensional array given; the array must be at "
                         "least two-dimensional")
    if square and a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{name}: last 2 dimensions of the array must be square, got shape "
                         f"{tuple(a.shape)}")
    return astype(a, result_type(a, 0.0))


def _float_matrix(a, name: str):
    return _float_array(a, name, square=True)


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
    return dc._mH(lo) if upper else lo


def _lower_symmetric(a):
    """The symmetric (Hermitian) matrix NumPy's LAPACK calls see: the lower triangle,
    mirrored (so a derivative reaches only the entries they read)."""
    from . import imag, tril
    low = tril(a)
    if dtypes.is_complex(a.dtype):  # Hermitian: LAPACK reads only the diagonal's real part
        from . import diagonal, eye
        low = low - 1j * imag(diagonal(low, axis1=-2, axis2=-1))[..., None] * eye(a.shape[-1])
    return low + dc._mH(tril(a, -1))


def eigh(a, UPLO="L"):
    from ..core import bind
    a = _float_matrix(a, "eigh")
    if UPLO not in ("L", "U"):
        raise ValueError(f"eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    sym = _lower_symmetric(a if UPLO == "L" else dc._mH(a))
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
    """Vector norms (any `ord`) and matrix norms ('fro', 'nuc', 1, -1, 2, -2, inf, -inf),
    as NumPy defines them; 2, -2 and 'nuc' through the singular values."""
    from . import abs, asarray, astype, max, min, ndim, power, result_type, sqrt, sum
    x = asarray(as_operand(x))
    x = astype(x, result_type(x, 0.0))
    by_singular_values = ord in (2, -2, "nuc") and (
        ndim(x) == 2 and axis is None or
        axis is not None and np.ndim(axis) == 1 and len(axis) == 2)
    if dtypes.is_complex(x.dtype) and not by_singular_values:
        x = abs(x)  # every norm but those of the singular values depends on the moduli
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
        from . import moveaxis
        sv = svdvals(moveaxis(x, (r, c), (-2, -1)))
        out = (max if ord == 2 else min)(sv, axis=-1) if ord != "nuc" else sum(sv, axis=-1)
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


def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    """U, S, Vh with a = U @ (S[..., None] * Vh), as NumPy returns them. Derivatives with
    `full_matrices=True` need square matrices (pass False otherwise); derivatives through U
    and Vh at repeated singular values are nan (the vectors are not unique there), those of
    S are defined everywhere. `hermitian` is accepted and ignored (the general SVD is right
    for symmetric matrices too)."""
    from ..core import bind
    a = _float_array(a, "svd", square=False)
    if not compute_uv:
        return bind(dc.svd_p, a, full_matrices=False, compute_uv=False)[0]
    u, sv, vh = bind(dc.svd_p, a, full_matrices=bool(full_matrices), compute_uv=True)
    return SVDResult(u, sv, vh)


def svdvals(x):
    return svd(x, compute_uv=False)


def qr(a, mode="reduced"):
    """Q, R with a = Q @ R: 'reduced' (Q has min(m, n) columns), 'complete' (Q is m x m,
    R has m rows; with more rows than columns Q's extra columns are LAPACK's, not unique,
    and have no derivative), or 'r' (R of the reduced factorization). 'raw' (LAPACK's
    Householder form) is not offered."""
    a = _float_array(a, "qr", square=False)
    m, n = a.shape[-2:]
    if mode not in ("reduced", "complete", "r", "raw"):
        raise ValueError(f"qr: unrecognized mode {mode!r}")
    if mode == "raw":
        raise NotImplementedError("qr(mode='raw') is not offered: use mode='reduced' (or "
                                  "'r')")
    q, r = dc.qr(a, full=mode == "complete" and m > n)
    return r if mode == "r" else QRResult(q, r)


def _default_rcond(a):
    return _default_rcond_of(a.shape, a.dtype)


def _kept_singular_values(sv, cut):
    """Which singular values are above the cut atol + rtol · max(s), `cut` = (atol, rtol)
    (NumPy's rcond is (0, rcond)). The cut is made on the values, so it does not move under
    differentiation."""
    from .. import api
    from . import max
    atol, rtol = cut
    sv_c = api.stop_gradient(sv)
    return sv_c > atol + rtol * max(sv_c, axis=-1, keepdims=True)


def _inverted_singular_values(sv, cut):
    """1/s for the singular values above the cut, 0 for the rest."""
    from . import where
    large = _kept_singular_values(sv, cut)
    return where(large, 1.0 / where(large, sv, 1.0), 0.0)


def _pinv_value(cut, a):
    from . import matmul
    u, sv, vh = svd(a, full_matrices=False)
    return matmul(dc._mH(vh), _inverted_singular_values(sv, cut)[..., :, None] * dc._mH(u))


def _pinv_jvp(cut, primals, tangents):
    """dP = −P dA P + P Pᴴ dAᴴ (I − A P) + (I − P A) dAᴴ Pᴴ P: the derivative of the
    pseudo-inverse where the rank is constant (Golub and Pereyra, 1973)."""
    from . import matmul as mm
    (a,), (da,) = primals, tangents
    p = _pinv_core(cut, a)
    pt, dat = dc._mH(p), dc._mH(da)
    first = -mm(p, mm(da, p))
    second = mm(mm(p, pt), dat - mm(mm(dat, a), p))
    third = mm(dat, mm(pt, p)) - mm(p, mm(a, mm(dat, mm(pt, p))))
    return p, first + second + third


def _make_pinv_core():
    from ..custom_derivatives import custom_jvp
    core = custom_jvp(_pinv_value, nondiff_argnums=(0,))
    core.defjvp(_pinv_jvp)
    return core


_pinv_core = _make_pinv_core()


def pinv(a, rcond=None, hermitian=False, *, rtol=np._NoValue):
    """The Moore-Penrose pseudo-inverse, singular values below rcond · max(s) treated as
    zero (NumPy's defaults: rcond 1e-15, or max(m, n) · eps with `rtol=None`)."""
    a = _float_array(a, "pinv", square=False)
    if rcond is None:
        if rtol is np._NoValue:
            rcond = 1e-15
        elif rtol is None:
            rcond = _default_rcond(a)
        else:
            rcond = rtol
    elif rtol is not np._NoValue:
        raise ValueError("pinv: `rtol` and `rcond` can't be both set.")
    if 0 in tuple(a.shape[-2:]):  # NumPy: the empty (n, m) result
        from . import zeros
        return zeros(tuple(a.shape[:-2]) + (a.shape[-1], a.shape[-2]), dtype=a.dtype)
    return _pinv_core((0.0, float(rcond)), a)


def lstsq(a, b, rcond=None):
    """The least-squares solution x of a @ x ≈ b (through the pseudo-inverse), the sums of
    squared residuals, the rank and the singular values, as NumPy returns them. NumPy returns
    the residuals only when rank == n < m and an empty array otherwise; the shape of a traced
    result cannot depend on the rank, so here they are returned whenever m > n (and empty
    when m <= n), whatever the rank."""
    from . import asarray, astype, matmul, result_type, sum
    from ._functions import squared_modulus
    a = _float_array(a, "lstsq", square=False)
    if a.ndim != 2:
        raise ValueError(f"lstsq: a must be two-dimensional, got shape {tuple(a.shape)}")
    b = asarray(as_operand(b))
    dtype = result_type(a, b, 0.0)
    a, b = astype(a, dtype), astype(b, dtype)
    m, n = a.shape
    if b.ndim not in (1, 2) or b.shape[0] != m:
        raise ValueError(f"lstsq: incompatible dimensions: a is {tuple(a.shape)}, b is "
                         f"{tuple(b.shape)}")
    rcond = _default_rcond(a) if rcond is None else float(rcond)
    x = matmul(_pinv_core((0.0, float(rcond)), a), b)
    sv = svdvals(a)
    rank = astype(matrix_rank(a, tol=rcond * _max_or_zero(sv)), np.int32)  # LAPACK's int
    if m > n:
        r = b - matmul(a, x)
        residuals = sum(squared_modulus(r), axis=0)
        residuals = residuals[None] if b.ndim == 1 else residuals
    else:
        residuals = astype(asarray(np.zeros((0,))), dtypes.real_dtype(dtype))
    return LstsqResult(x, residuals, rank, sv)


def _max_or_zero(sv):
    from .. import api
    from . import max
    sv = api.stop_gradient(sv)
    return max(sv, axis=-1) if sv.shape[-1] else 0.0


def matrix_rank(A, tol=None, hermitian=False, *, rtol=None):
    """The number of singular values above `tol` (by default max(s) · max(m, n) · eps)."""
    from .. import api
    from . import asarray, astype, sum
    A = asarray(as_operand(A))
    if tol is not None and rtol is not None:
        raise ValueError("matrix_rank: `tol` and `rtol` can't be both set.")
    if A.ndim < 2:
        return astype(sum(astype(A != 0, np.int64)) > 0, np.int64)
    sv = api.stop_gradient(svdvals(A))
    if tol is None:
        rtol = _default_rcond_of(A.shape, sv.dtype) if rtol is None else rtol
        from . import max
        cut = max(sv, axis=-1, keepdims=True) * rtol if sv.shape[-1] else 0.0
    else:
        cut = asarray(tol)[..., None] if not isinstance(tol, (int, float)) else tol
    return sum(astype(sv > cut, np.int64), axis=-1)


def _default_rcond_of(shape, dtype):
    return max(shape[-2:]) * float(np.finfo(dtype).eps)


def cond(x, p=None):
    """The condition number: s_max / s_min for p None, 2 or -2 (inverted); for 'fro', 'nuc',
    1, -1, inf, -inf, norm(x, p) · norm(inv(x), p)."""
    from . import max, min
    x = _float_array(x, "cond", square=p not in (None, 2, -2))
    if p in (None, 2, -2):
        sv = svdvals(x)
        big, small = max(sv, axis=-1), min(sv, axis=-1)
        return big / small if p != -2 else small / big
    return norm(x, p, axis=(-2, -1)) * norm(inv(x), p, axis=(-2, -1))


def matrix_transpose(x, /):
    from . import matrix_transpose as np_matrix_transpose
    return np_matrix_transpose(x)


def matrix_norm(x, /, *, keepdims=False, ord="fro"):
    return norm(x, ord=ord, axis=(-2, -1), keepdims=keepdims)


def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):
    from . import asarray, reshape
    x = asarray(as_operand(x))
    if axis is None:
        out = norm(reshape(x, (-1,)), ord=ord)
        return reshape(out, (1,) * x.ndim) if keepdims else out
    if isinstance(axis, tuple) and len(axis) > 1:
        from . import moveaxis
        axes = tuple(a % x.ndim for a in axis)
        moved = moveaxis(x, axes, tuple(range(-len(axes), 0)))
        flat = reshape(moved, tuple(moved.shape[:x.ndim - len(axes)]) + (-1,))
        out = norm(flat, ord=ord, axis=-1)
        if keepdims:
            shape = [1 if d in axes else s for d, s in enumerate(x.shape)]
            out = reshape(out, tuple(shape))
        return out
    return norm(x, ord=ord, axis=axis, keepdims=keepdims)


class EigResult(NamedTuple):
    eigenvalues: object
    eigenvectors: object


def eig(a):
    """The eigenvalues and unit eigenvectors (columns) of general square matrices. They are
    complex whatever `a` is: a traced result's dtype cannot depend on whether the values
    happen to be real (JAX and NumPy from 2.5 do the same; earlier NumPy returns real arrays
    then). Real matrices go to LAPACK's real solver, so the values are NumPy's, real
    eigenvectors included. Each vector's phase is LAPACK's, so only phase-free functions of
    the vectors differentiate; at repeated eigenvalues their derivatives are nan."""
    from ..core import bind
    w, v = bind(dc.eig_p, _float_matrix(a, "eig"), vectors=True)
    return EigResult(w, v)


def eigvals(a):
    """The eigenvalues of general square matrices, complex (see `eig`)."""
    from ..core import bind
    return bind(dc.eig_p, _float_matrix(a, "eigvals"), vectors=False)[0]


# -- the array-API names NumPy 2 put in numpy.linalg -----------------------------------------

def matmul(x1, x2, /):
    from . import matmul as mm
    return mm(x1, x2)


def outer(x1, x2, /):
    """Outer product of two vectors (1-d only, unlike numpy.outer)."""
    from . import asarray
    from . import outer as np_outer
    a, b = asarray(as_operand(x1)), asarray(as_operand(x2))
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"outer: input arrays must be one-dimensional, got shapes "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    return np_outer(a, b)


def cross(x1, x2, /, *, axis=-1):
    from . import cross as np_cross
    return np_cross(x1, x2, axis=axis)


def diagonal(x, /, *, offset=0):
    from . import diagonal as np_diagonal
    return np_diagonal(x, offset=offset, axis1=-2, axis2=-1)


def trace(x, /, *, offset=0, dtype=None):
    from . import trace as np_trace
    return np_trace(x, offset=offset, axis1=-2, axis2=-1, dtype=dtype)


def tensordot(x1, x2, /, *, axes=2):
    from . import tensordot as np_tensordot
    return np_tensordot(x1, x2, axes=axes)


def vecdot(x1, x2, /, *, axis=-1):
    from . import vecdot as np_vecdot
    return np_vecdot(x1, x2, axis=axis)


def tensorinv(a, ind=2):
    """The inverse of `a` seen as a matrix of its first `ind` axes against the rest."""
    from . import asarray, reshape
    a = asarray(as_operand(a))
    if ind <= 0:
        raise ValueError("tensorinv: ind must be a positive integer")
    outer_shape, inner_shape = tuple(a.shape[:ind]), tuple(a.shape[ind:])
    rows = int(np.prod(outer_shape))
    if int(np.prod(inner_shape)) != rows:
        raise ValueError(f"tensorinv: the product of the first {ind} axes of {tuple(a.shape)} "
                         "must equal the product of the rest")
    return reshape(inv(reshape(a, (rows, rows))), inner_shape + outer_shape)


def tensorsolve(a, b, axes=None):
    """x with tensordot(a, x, x.ndim) = b."""
    from . import asarray, moveaxis, reshape
    a, b = asarray(as_operand(a)), asarray(as_operand(b))
    if axes is not None:
        a = moveaxis(a, axes, tuple(range(a.ndim - len(axes), a.ndim)))
    x_shape = tuple(a.shape[b.ndim:])
    rows, cols = int(np.prod(a.shape[:b.ndim])), int(np.prod(x_shape))
    if rows != cols:
        raise ValueError(f"tensorsolve: a's shape {tuple(a.shape)} does not make a square "
                         f"system for b's {tuple(b.shape)}")
    return reshape(solve(reshape(a, (rows, cols)), reshape(b, (rows,))), x_shape)
