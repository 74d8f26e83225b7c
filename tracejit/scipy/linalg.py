"""`scipy.linalg` on traced values: solve_triangular, cholesky, cho_factor, cho_solve, solve,
inv, det, eigh, eigvalsh, svd, svdvals, qr, pinv, lstsq.

SciPy's signatures and defaults (`cholesky` and `cho_factor` give the upper factor unless
`lower=True`; `qr` defaults to mode 'full' and offers column pivoting); the work is done by
the primitives behind `tracejit.numpy.linalg`, so every function has derivatives, batches
over leading axes where the primitive does, and compiles. Arguments that only tune LAPACK
(`overwrite_*`, `check_finite`, `lapack_driver`) are accepted and have no effect.
"""

from __future__ import annotations

import operator

import numpy as np

from ..numpy import linalg as _la
from ..numpy._base import as_operand
from ..primitives import decompositions as _dc

__all__ = ["cho_factor", "cho_solve", "cholesky", "det", "eigh", "eigvalsh", "inv", "lstsq",
           "pinv", "qr", "solve", "solve_triangular", "svd", "svdvals"]

_TRANS = {0: "N", "N": "N", 1: "T", "T": "T", 2: "C", "C": "C"}


def _rhs(a, b, name):
    """b as a stack of right-hand-side matrices matching `a`, and whether it was a vector."""
    from .. import numpy as tnp
    b = tnp.asarray(as_operand(b))
    dtype = tnp.result_type(a, b, 0.0)
    a, b = tnp.astype(a, dtype), tnp.astype(b, dtype)
    vector = b.ndim == 1  # as in NumPy 2: otherwise the last two axes are the columns
    if vector:
        b = b[..., None]
    n = a.shape[-1]
    if b.ndim < 2 or b.shape[-2] != n:
        raise ValueError(f"{name}: shapes of a {tuple(a.shape)} and b "
                         f"{tuple(b.shape[:-1] if vector else b.shape)} are incompatible")
    batch = tuple(np.broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2])))
    a = tnp.broadcast_to(a, batch + (n, n))
    b = tnp.broadcast_to(b, batch + tuple(b.shape[-2:]))
    return a, b, vector


def solve_triangular(a, b, trans=0, lower=False, unit_diagonal=False, overwrite_b=False,
                     check_finite=True):
    """x with op(a) x = b for triangular `a` (only its `lower` or upper triangle is read;
    with `unit_diagonal` its diagonal is taken as ones)."""
    from .. import numpy as tnp
    if trans not in _TRANS:
        raise ValueError(f"solve_triangular: trans must be 0, 1, 2, 'N', 'T' or 'C', got "
                         f"{trans!r}")
    a = _la._float_matrix(a, "solve_triangular")
    a = tnp.tril(a) if lower else tnp.triu(a)
    if unit_diagonal:
        n = a.shape[-1]
        eye = tnp.eye(n, dtype=a.dtype)
        a = a * (1.0 - eye) + eye
    a, b, vector = _rhs(a, b, "solve_triangular")
    op = _TRANS[trans]
    if op == "C" and tnp.iscomplexobj(a):  # aᴴ x = b: conj(x) solves aᵀ conj(x) = conj(b)
        x = tnp.conjugate(_dc.triangular_solve(a, tnp.conjugate(b), lower=bool(lower),
                                               trans=True))
    else:
        x = _dc.triangular_solve(a, b, lower=bool(lower), trans=op != "N")
    return x[..., 0] if vector else x


def cholesky(a, lower=False, overwrite_a=False, check_finite=True):
    """The Cholesky factor of `a`: upper U with a = Uᴴ U (SciPy's default), or lower L with
    a = L Lᴴ (ᴴ is ᵀ for real matrices). Only the triangle named by `lower` is read."""
    a = _la._float_matrix(a, "cholesky")
    if lower:
        return _la.cholesky(a)
    return _la.cholesky(_dc._mH(a), upper=True)


def cho_factor(a, lower=False, overwrite_a=False, check_finite=True):
    """(c, lower) for `cho_solve`. SciPy leaves arbitrary values in the unused triangle of
    `c`; here it is zero."""
    return cholesky(a, lower=lower), bool(lower)


def cho_solve(c_and_lower, b, overwrite_b=False, check_finite=True):
    """x with a x = b, given `cho_factor(a)`: two triangular solves with the factor (only
    its triangle of `c` is read)."""
    from .. import numpy as tnp
    c, lower = c_and_lower
    c = _la._float_matrix(c, "cho_solve")
    c = tnp.tril(c) if lower else tnp.triu(c)
    c, b, vector = _rhs(c, b, "cho_solve")
    # lower: L Lᴴ x = b; upper: Uᴴ U x = b. The solve with the conjugate transpose is
    # conj(solve with the transpose of conj(rhs)), since conj(c) is never formed.
    if lower:
        y = _dc.triangular_solve(c, b, lower=True, trans=False)
        x = tnp.conjugate(_dc.triangular_solve(c, tnp.conjugate(y), lower=True, trans=True))
    else:
        y = tnp.conjugate(_dc.triangular_solve(c, tnp.conjugate(b), lower=False, trans=True))
        x = _dc.triangular_solve(c, y, lower=False, trans=False)
    return x[..., 0] if vector else x


def solve(a, b, lower=False, overwrite_a=False, overwrite_b=False, check_finite=True,
          assume_a=None, transposed=False):
    """x with a x = b (`transposed`: aᵀ x = b). `assume_a` 'sym', 'her' or 'pos' reads only
    the triangle named by `lower` (as SciPy does), mirrored by the transpose ('sym') or the
    conjugate transpose ('her', 'pos': Hermitian); 'pos' solves through the Cholesky factor,
    'diagonal' divides; anything else is the general solve."""
    from .. import numpy as tnp
    a = _la._float_matrix(a, "solve")
    if transposed:
        a = tnp.swapaxes(a, -1, -2)
    kinds = (None, "gen", "general", "sym", "symmetric", "her", "hermitian", "pos",
             "positive definite", "diagonal", "upper triangular", "lower triangular")
    if assume_a not in kinds:
        raise ValueError(f"solve: {assume_a!r} is not a recognized matrix structure")
    if assume_a in ("upper triangular", "lower triangular"):
        return solve_triangular(a, b, lower=assume_a.startswith("lower"))
    if assume_a == "diagonal":
        a, bb, vector = _rhs(a, b, "solve")
        x = bb / tnp.diagonal(a, axis1=-2, axis2=-1)[..., :, None]
        return x[..., 0] if vector else x
    if assume_a in ("sym", "symmetric"):
        tri = tnp.tril(a) if lower else tnp.triu(a)
        strict = tnp.tril(a, -1) if lower else tnp.triu(a, 1)
        a = tri + tnp.swapaxes(strict, -1, -2)
    elif assume_a in ("her", "hermitian", "pos", "positive definite"):
        a = _la._lower_symmetric(a if lower else _dc._mH(a))
        if assume_a in ("pos", "positive definite"):
            return cho_solve(cho_factor(a, lower=True), b)
    a, bb, vector = _rhs(a, b, "solve")
    x = _dc.solve(a, bb)
    return x[..., 0] if vector else x


def inv(a, overwrite_a=False, check_finite=True):
    return _la.inv(a)


def det(a, overwrite_a=False, check_finite=True):
    return _la.det(a)


def eigh(a, b=None, *, lower=True, eigvals_only=False, overwrite_a=False, overwrite_b=False,
         type=1, check_finite=True, subset_by_index=None, subset_by_value=None, driver=None):
    """Eigenvalues (ascending) and eigenvectors of a symmetric (Hermitian) matrix, read from
    its `lower` (or upper) triangle. With a positive definite `b` (read the same way), the
    generalized problem of `type` 1 (a v = w b v), 2 (a b v = w v) or 3 (b a v = w v),
    reduced to a standard one through b's Cholesky factor L (LAPACK's sygst reduction,
    written with differentiable primitives): L⁻¹ a L⁻ᴴ or Lᴴ a L, eigenvectors mapped back by
    L⁻ᴴ (types 1 and 2, so vᴴ b v = I) or L (type 3).

    `subset_by_index=(lo, hi)` keeps the eigenpairs lo..hi (inclusive), a static slice of
    the full result. `subset_by_value=(lo, hi)` keeps those with lo < w <= hi; how many
    depends on the values, so it needs concrete (untraced) matrices, as NumPy code would
    run. Both are computed from the full decomposition (LAPACK's partial solvers are not
    called)."""
    if subset_by_index is not None and subset_by_value is not None:
        raise ValueError("scipy.linalg.eigh: either subset_by_index or subset_by_value can "
                         "be given, not both")
    if b is not None:
        if type not in (1, 2, 3):
            raise ValueError(f"scipy.linalg.eigh: type must be 1, 2 or 3, got {type!r}")
        w, v = _generalized_eigh(a, b, lower, type)
    else:
        w, v = _la.eigh(a, UPLO="L" if lower else "U")
    if subset_by_index is not None:
        w, v = _subset_by_index(w, v, subset_by_index)
    elif subset_by_value is not None:
        w, v = _subset_by_value(w, v, subset_by_value)
    return w if eigvals_only else (w, v)


def _subset_by_index(w, v, bounds):
    n = w.shape[-1]
    try:
        lo, hi = (int(operator.index(i)) for i in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"scipy.linalg.eigh: subset_by_index must be two integers, got "
                         f"{bounds!r}") from None
    if not 0 <= lo <= hi < n:
        raise ValueError(f"scipy.linalg.eigh: subset_by_index {bounds!r} is out of range "
                         f"for a {n}x{n} matrix (0 <= lo <= hi <= {n - 1})")
    return w[..., lo:hi + 1], v[..., lo:hi + 1]


def _subset_by_value(w, v, bounds):
    from ..core import Tracer
    from ..errors import ConcretizationError
    lo, hi = (float(x) for x in bounds)
    if not lo < hi:
        raise ValueError(f"scipy.linalg.eigh: subset_by_value needs lo < hi, got {bounds!r}")
    if isinstance(w, Tracer):
        raise ConcretizationError(
            "scipy.linalg.eigh: subset_by_value of a traced matrix has a length that depends "
            "on its eigenvalues; use subset_by_index, or the full result and a mask")
    if np.ndim(w) != 1:
        raise ValueError("scipy.linalg.eigh: subset_by_value takes a single matrix")
    keep = (np.asarray(w) > lo) & (np.asarray(w) <= hi)
    return np.asarray(w)[keep], np.asarray(v)[:, keep]


def _generalized_eigh(a, b, lower, kind):
    from .. import numpy as tnp
    def symmetric(x):  # the matrix the named triangle holds, as numpy.linalg.eigh reads it
        x = _la._float_array(x, "eigh", square=True)
        return _la._lower_symmetric(x if lower else _dc._mH(x))
    a, b = symmetric(a), symmetric(b)
    if tnp.shape(a) != tnp.shape(b):
        raise ValueError(f"scipy.linalg.eigh: a and b must have one shape, got "
                         f"{tnp.shape(a)} and {tnp.shape(b)}")
    L = _la.cholesky(b)
    if kind == 1:  # L⁻¹ a L⁻ᴴ = L⁻¹ (L⁻¹ a)ᴴ for Hermitian a
        c = solve_triangular(L, _dc._mH(solve_triangular(L, a, lower=True)), lower=True)
    else:  # Lᴴ a L
        c = tnp.matmul(_dc._mH(L), tnp.matmul(a, L))
    c = (c + _dc._mH(c)) * 0.5  # Hermitian to the last bit
    w, u = _la.eigh(c)
    if kind == 3:
        return w, tnp.matmul(L, u)
    return w, solve_triangular(L, u, trans="C", lower=True)


def eigvalsh(a, b=None, *, lower=True, **kwargs):
    return eigh(a, b, lower=lower, eigvals_only=True, **kwargs)


def svd(a, full_matrices=True, compute_uv=True, overwrite_a=False, check_finite=True,
        lapack_driver="gesdd"):
    out = _la.svd(a, full_matrices=full_matrices, compute_uv=compute_uv)
    return tuple(out) if compute_uv else out


def svdvals(a, overwrite_a=False, check_finite=True):
    return _la.svdvals(a)


def qr(a, overwrite_a=False, lwork=None, mode="full", pivoting=False, check_finite=True):
    """SciPy's modes: 'full' (NumPy's 'complete'), 'economic' (NumPy's 'reduced'), 'r'
    (R of the full factorization alone); mode 'raw' is not offered.

    With `pivoting`, LAPACK's column-pivoted factorization (geqp3, as SciPy calls it):
    (Q, R, P), or (R, P) for mode 'r', with a[..., P] = Q R, the diagonal of R non-increasing
    in magnitude and P an int32 permutation of the columns. Q and R differentiate as the
    QR of a[..., P] with P held (the permutation is piecewise constant; P has no
    derivative). Stacks of matrices factor one by one, as SciPy's do."""
    modes = {"full": "complete", "economic": "reduced", "r": "r"}
    if mode == "raw":
        raise NotImplementedError("scipy.linalg.qr: mode='raw' (LAPACK's Householder form) "
                                  "is not offered: use 'full', 'economic' or 'r'")
    if mode not in modes:
        raise ValueError(f"qr: mode must be 'full', 'economic' or 'r', got {mode!r}")
    a = _la._float_array(a, "qr", square=False)
    if a.dtype == np.float16:  # SciPy factors half precision in single (LAPACK has no half)
        a = a.astype(np.float32)
    m, n = a.shape[-2:]
    if pivoting:
        q, r, p = _dc.qr(a, full=mode == "full" and m > n, pivoting=True)
        return (_r_rows(r, m), p) if mode == "r" else (q, r, p)
    out = _la.qr(a, mode=modes[mode])
    return (_r_rows(out, m),) if mode == "r" else tuple(out)


def _r_rows(r, m):
    """The reduced R with zero rows below it up to `m`: mode 'r' gives the R of the full
    factorization, as SciPy does (its rows past min(m, n) are zero), from the reduced one,
    which has derivatives."""
    from .. import numpy as tnp
    k = r.shape[-2]
    if k == m:
        return r
    return tnp.pad(r, [(0, 0)] * (r.ndim - 2) + [(0, m - k), (0, 0)])


def pinv(a, *, atol=None, rtol=None, return_rank=False, check_finite=True):
    """The pseudo-inverse with SciPy's cut: singular values at most atol + rtol · max(s)
    are dropped (rtol by default max(m, n) · eps, whatever atol is)."""
    a = _la._float_array(a, "pinv", square=False)
    if rtol is None:
        rtol = _la._default_rcond_of(a.shape, a.dtype)
    cut = (0.0 if atol is None else float(atol), float(rtol))
    if cut[0] < 0 or cut[1] < 0:
        raise ValueError("pinv: atol and rtol values must be positive")
    p = _la._pinv_core(cut, a)
    if return_rank:
        from .. import numpy as tnp
        kept = _la._kept_singular_values(_la.svdvals(a), cut)
        return p, tnp.sum(kept, axis=-1)
    return p


def lstsq(a, b, cond=None, overwrite_a=False, overwrite_b=False, check_finite=True,
          lapack_driver=None):
    """(x, residues, rank, s) as SciPy returns them (residues as `numpy.linalg.lstsq`'s,
    see there)."""
    return tuple(_la.lstsq(a, b, rcond=cond))
