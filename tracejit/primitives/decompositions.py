"""Dense linear algebra: solve, triangular_solve, inv, slogdet, cholesky, eigh, svd, qr, eig.

Every primitive works on stacks of matrices (leading batch dimensions, the matrix in the
last two), as NumPy's `linalg` does, so a batching rule only broadcasts unbatched operands.
The JVPs are the textbook ones, written with matrix products and solves so that reverse
mode needs transpose rules only for the solves (linear in their right-hand side):

    solve:     dX = A⁻¹ (dB − dA X)
    inv:       dA⁻¹ = −A⁻¹ dA A⁻¹
    slogdet:   d log|det A| = tr(A⁻¹ dA)
    cholesky:  dL = L Φ(L⁻¹ dA L⁻ᵀ), Φ the lower triangle with its diagonal halved
    eigh:      dw = diag(Vᵀ dA V),  dV = V (F ∘ Vᵀ dA V),  F_ij = 1 / (w_j − w_i), F_ii = 0
    svd:       dP = Uᴴ dA V,  ds = re diag(dP),  G_ij = 1 / (s_j² − s_i²), G_ii = 0,
               dU = U (G ∘ (dP S + S dPᴴ) + i im diag(dP) S⁻¹) + (I − U Uᴴ) dA V S⁻¹,
               dV = V (G ∘ (S dP + dPᴴ S)) + (I − V Vᴴ) dAᴴ U S⁻¹
    qr:        C = Qᴴ dA R⁻¹,  Ω = tril(C, −1) − tril(C, −1)ᴴ + i im diag(C),  dR = (C − Ω) R,
               dQ = dA R⁻¹ − Q (C − Ω)   (rows ≥ columns; wider matrices split A = [X Y]);
               with column pivoting (A P = Q R), the same rule for A P, P held: the
               permutation is piecewise constant and has no derivative
    eig:       dw = diag(V⁻¹ dA V),  dV₀ = V (F ∘ V⁻¹ dA V),  dV = dV₀ − V re diag(Vᴴ dV₀),
               F as for eigh (the last term keeps the columns of unit length, as LAPACK's)

For complex matrices ᴴ is the conjugate transpose (ᵀ for real ones). The complex SVD, Hermitian
eigh and eig fix each vector only up to a phase (LAPACK picks one): the phase-free functions of
the vectors (|v|, u vᴴ products, projectors) differentiate; the gauge chosen above (V's phase
held) is JAX's. QR is unique with R's real diagonal, as LAPACK returns it.

Where two eigenvalues (singular values) coincide to within n·eps of the largest, F (G) is
undefined and set to nan: a derivative through the eigenvectors (singular vectors) at a
repeated value is nan, never a large finite number. Eigenvalues and singular values alone
have derivatives everywhere they are distinct or not.

Compiled code calls Numba's `np.linalg` (LAPACK through SciPy) per matrix of the stack,
BLAS trsm for triangular solves, and LAPACK through Numba's helper library for what Numba's
`np.linalg` lacks (the complete QR, eig of real matrices with complex pairs), and LAPACK's
geqp3 from SciPy's `cython_lapack` for the column-pivoted QR.
"""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..core import Primitive, abstract_eval_rules, bind, impl_rules
from ..errors import ShapeError
from ..ir import ShapedArray
from ..transforms.jvp import Zero, instantiate, is_zero, jvp_rules, tangent_aval
from ..transforms.transpose import is_undefined, transpose_rules
from .elementwise import _aval

solve_p = Primitive("solve")
triangular_solve_p = Primitive("triangular_solve")
inv_p = Primitive("inv")
slogdet_p = Primitive("slogdet", multiple_results=True)
cholesky_p = Primitive("cholesky")
eigh_p = Primitive("eigh", multiple_results=True)
svd_p = Primitive("svd", multiple_results=True)  # [u, s, vh], or [s] without compute_uv
# [q, r], reduced, or complete with `full`; with `pivoting`, [q, r, p] of A[..., p] = Q R
qr_p = Primitive("qr", multiple_results=True)
eig_p = Primitive("eig", multiple_results=True)  # complex [w, v], or [w] without vectors

DECOMPOSITIONS = (solve_p, triangular_solve_p, inv_p, slogdet_p, cholesky_p, eigh_p, svd_p,
                  qr_p, eig_p)


def _square(name: str, a: ShapedArray) -> None:
    """Square real or complex floating-point matrices."""
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ShapeError(f"{name}: expected a square matrix (or a stack of them) in the last "
                         f"two axes, got shape {a.shape}")
    if not dtypes.is_inexact(a.dtype):
        raise TypeError(f"{name}: expected floating-point matrices, got {a.dtype}")


def _solve_abstract(a, b, **_):
    _square("solve", a)
    if b.ndim != a.ndim or b.shape[:-2] != a.shape[:-2] or b.shape[-2] != a.shape[-1]:
        raise ShapeError(f"solve: the right-hand side {b.shape} does not match the matrix "
                         f"{a.shape} (expected {a.shape[:-1]} + (k,))")
    if b.dtype != a.dtype:
        raise TypeError(f"solve: operands must have one dtype, got {a.dtype} and {b.dtype}")
    return ShapedArray(b.shape, b.dtype)


abstract_eval_rules[solve_p] = _solve_abstract
def _triangular_solve_abstract(a, b, **params):
    _square("triangular_solve", a)
    return _solve_abstract(a, b, **params)


abstract_eval_rules[triangular_solve_p] = _triangular_solve_abstract


def _same_abstract(name):
    def rule(a):
        _square(name, a)
        return ShapedArray(a.shape, a.dtype)
    return rule


abstract_eval_rules[inv_p] = _same_abstract("inv")
abstract_eval_rules[cholesky_p] = _same_abstract("cholesky")


def _slogdet_abstract(a):
    _square("slogdet", a)  # a complex sign (|sign| = 1), a real log|det|
    return [ShapedArray(a.shape[:-2], a.dtype),
            ShapedArray(a.shape[:-2], dtypes.real_dtype(a.dtype))]


def _eigh_abstract(a):
    _square("eigh", a)  # Hermitian: real eigenvalues
    return [ShapedArray(a.shape[:-1], dtypes.real_dtype(a.dtype)),
            ShapedArray(a.shape, a.dtype)]


def _matrix(name: str, a: ShapedArray) -> None:
    """Real or complex floating-point matrices (the SVD and QR of both)."""
    if a.ndim < 2:
        raise ShapeError(f"{name}: expected a matrix (or a stack of them) in the last two "
                         f"axes, got shape {a.shape}")
    if not dtypes.is_inexact(a.dtype):
        raise TypeError(f"{name}: expected floating-point matrices, got {a.dtype}")


def _svd_abstract(a, *, full_matrices, compute_uv):
    _matrix("svd", a)
    *batch, m, n = a.shape
    batch, k = tuple(batch), min(m, n)
    s = ShapedArray(batch + (k,), dtypes.real_dtype(a.dtype))
    if not compute_uv:
        return [s]
    cu, rv = (m, n) if full_matrices else (k, k)
    return [ShapedArray(batch + (m, cu), a.dtype), s, ShapedArray(batch + (rv, n), a.dtype)]


def _qr_abstract(a, *, full, pivoting):
    _matrix("qr", a)
    *batch, m, n = a.shape
    batch, k = tuple(batch), (m if full else min(m, n))
    out = [ShapedArray(batch + (m, k), a.dtype), ShapedArray(batch + (k, n), a.dtype)]
    if pivoting:  # LAPACK's column permutation, as SciPy returns it (int32)
        out.append(ShapedArray(batch + (n,), np.dtype(np.int32)))
    return out


def _eig_abstract(a, *, vectors):
    _square("eig", a)  # complex results for real matrices too: a pair may be complex
    dt = dtypes.complex_dtype(a.dtype)
    w = ShapedArray(a.shape[:-1], dt)
    return [w, ShapedArray(a.shape, dt)] if vectors else [w]


abstract_eval_rules[slogdet_p] = _slogdet_abstract
abstract_eval_rules[eig_p] = _eig_abstract
abstract_eval_rules[eigh_p] = _eigh_abstract
abstract_eval_rules[svd_p] = _svd_abstract
abstract_eval_rules[qr_p] = _qr_abstract


def _triangular_impl(a, b, *, lower, trans):
    from scipy.linalg import solve_triangular
    a, b = np.asarray(a), np.asarray(b)
    out = np.empty(b.shape, b.dtype)
    for idx in np.ndindex(*a.shape[:-2]):
        out[idx] = solve_triangular(a[idx], b[idx], lower=lower, trans=1 if trans else 0)
    return out


impl_rules[solve_p] = lambda a, b: np.linalg.solve(a, b).astype(np.asarray(b).dtype)
impl_rules[triangular_solve_p] = _triangular_impl
impl_rules[inv_p] = lambda a: np.linalg.inv(a).astype(np.asarray(a).dtype)
impl_rules[cholesky_p] = lambda a: np.linalg.cholesky(a).astype(np.asarray(a).dtype)


def _slogdet_impl(a):
    sign, logabs = np.linalg.slogdet(a)
    dt = np.asarray(a).dtype
    return [np.asarray(sign, dt), np.asarray(logabs, dtypes.real_dtype(dt))]


def _eigh_impl(a):
    w, v = np.linalg.eigh(a)
    dt = np.asarray(a).dtype
    return [w.astype(dtypes.real_dtype(dt)), v.astype(dt)]


def _svd_impl(a, *, full_matrices, compute_uv):
    dt = np.asarray(a).dtype
    rdt = dtypes.real_dtype(dt)
    if not compute_uv:
        return [np.linalg.svd(a, compute_uv=False).astype(rdt)]
    u, s, vh = np.linalg.svd(a, full_matrices=full_matrices)
    return [u.astype(dt), s.astype(rdt), vh.astype(dt)]


def _qr_impl(a, *, full, pivoting):
    dt = np.asarray(a).dtype
    if pivoting:
        return _qr_pivoted_impl(np.asarray(a), full)
    return [x.astype(dt) for x in np.linalg.qr(a, mode="complete" if full else "reduced")]


def _qr_pivoted_impl(a, full):
    """SciPy's pivoted QR (LAPACK geqp3, then orgqr/ungqr) per matrix of the stack."""
    from scipy.linalg import qr as scipy_qr
    (q_aval, r_aval, p_aval) = _qr_abstract(ShapedArray(a.shape, a.dtype), full=full,
                                            pivoting=True)
    q = np.empty(q_aval.shape, a.dtype)
    r = np.empty(r_aval.shape, a.dtype)
    p = np.empty(p_aval.shape, np.int32)
    for idx in np.ndindex(*a.shape[:-2]):
        qi, ri, pi = scipy_qr(a[idx], mode="full" if full else "economic", pivoting=True)
        q[idx], r[idx], p[idx] = qi, ri, pi
    return [q, r, p]


def _eig_impl(a, *, vectors):
    dt = dtypes.complex_dtype(np.asarray(a).dtype)
    if not vectors:
        return [np.linalg.eigvals(a).astype(dt)]
    return [x.astype(dt) for x in np.linalg.eig(a)]


impl_rules[slogdet_p] = _slogdet_impl
impl_rules[eig_p] = _eig_impl
impl_rules[eigh_p] = _eigh_impl
impl_rules[svd_p] = _svd_impl
impl_rules[qr_p] = _qr_impl


# -- wrappers ----------------------------------------------------------------------------------

def solve(a, b):
    return bind(solve_p, a, b)


def triangular_solve(a, b, lower=True, trans=False):
    """`op(a)⁻¹ b` for triangular `a` (`op` transposes when `trans`)."""
    return bind(triangular_solve_p, a, b, lower=bool(lower), trans=bool(trans))


def svd(a, full_matrices=False, compute_uv=True):
    """[u, s, vh] (or [s]) of the stack of matrices `a`."""
    return bind(svd_p, a, full_matrices=bool(full_matrices), compute_uv=bool(compute_uv))


def qr(a, full=False, pivoting=False):
    """[q, r], the reduced QR factorization of the stack of matrices `a` (with `full`, the
    complete one: q square, r with as many rows as `a`). With `pivoting`, [q, r, p]: LAPACK's
    column-pivoted factorization a[..., p] = q r (geqp3: |r|'s diagonal non-increasing), p
    an int32 permutation of the columns."""
    return bind(qr_p, a, full=bool(full), pivoting=bool(pivoting))


def eig(a, vectors=True):
    """[w, v] (or [w]): the eigenvalues and unit eigenvectors of the stack of matrices `a`,
    complex whatever `a` is."""
    return bind(eig_p, a, vectors=bool(vectors))


def _mT(x):
    from ..numpy import swapaxes
    return swapaxes(x, -1, -2)


def _mH(x):
    """The conjugate transpose (the transpose of real matrices)."""
    from ..numpy import conjugate
    return conjugate(_mT(x))


def _mm(a, b):
    from ..numpy import matmul
    return matmul(a, b)


# -- derivatives -------------------------------------------------------------------------------

def _solve_jvp(primals, tangents):
    a, b = primals
    ta, tb = tangents
    x = solve(a, b)
    if is_zero(ta) and is_zero(tb):
        return x, Zero(tangent_aval(_aval(x)))
    rhs = instantiate(tb) if is_zero(ta) else (
        -_mm(ta, x) if is_zero(tb) else tb - _mm(ta, x))
    return x, solve(a, rhs)


def _solve_transpose(ct, a, b):
    if is_undefined(a):
        raise NotImplementedError("solve is linear in its right-hand side only")
    return [None, solve(_mT(a), instantiate(ct))]


def _triangular_jvp(primals, tangents, *, lower, trans):
    a, b = primals
    ta, tb = tangents
    x = triangular_solve(a, b, lower, trans)
    if is_zero(ta) and is_zero(tb):
        return x, Zero(tangent_aval(_aval(x)))
    rhs = instantiate(tb)
    if not is_zero(ta):
        op = _mT(ta) if trans else ta
        rhs = rhs - _mm(op, x)
    return x, triangular_solve(a, rhs, lower, trans)


def _triangular_transpose(ct, a, b, *, lower, trans):
    if is_undefined(a):
        raise NotImplementedError("triangular_solve is linear in its right-hand side only")
    return [None, triangular_solve(a, instantiate(ct), lower, not trans)]


def _inv_jvp(primals, tangents):
    (a,), (ta,) = primals, tangents
    ai = bind(inv_p, a)
    if is_zero(ta):
        return ai, Zero(tangent_aval(_aval(ai)))
    return ai, -_mm(_mm(ai, ta), ai)


def _slogdet_jvp(primals, tangents):
    from .. import numpy as tnp
    (a,), (ta,) = primals, tangents
    sign, logabs = bind(slogdet_p, a)
    if is_zero(ta):
        return [sign, logabs], [Zero(tangent_aval(_aval(sign)))] * 2
    trace = tnp.trace(solve(a, ta), axis1=-2, axis2=-1)
    if dtypes.is_complex(_aval(a).dtype):
        # tr(A⁻¹ dA) = d log det A = d log|det A| + i d arg(det A): the sign turns by the
        # imaginary part
        return [sign, logabs], [sign * (1j * tnp.imag(trace)), tnp.real(trace)]
    return [sign, logabs], [Zero(tangent_aval(_aval(sign))), trace]


def _cholesky_jvp(primals, tangents):
    from .. import numpy as tnp
    (a,), (ta,) = primals, tangents
    lo = bind(cholesky_p, a)
    if is_zero(ta):
        return lo, Zero(tangent_aval(_aval(lo)))
    n = _aval(a).shape[-1]
    # L⁻¹ dA L⁻ᴴ: two triangular solves (the second on the conjugate transpose)
    tmp = triangular_solve(lo, ta, True, False)
    tmp = _mH(triangular_solve(lo, _mH(tmp), True, False))
    half = np.tril(np.ones((n, n)), -1) + 0.5 * np.eye(n)
    phi = tmp * tnp.asarray(half, dtype=_aval(a).dtype)
    return lo, _mm(lo, phi)


def _eigh_jvp(primals, tangents):
    from .. import numpy as tnp
    (a,), (ta,) = primals, tangents
    w, v = bind(eigh_p, a)
    if is_zero(ta):
        return [w, v], [Zero(tangent_aval(_aval(w))), Zero(tangent_aval(_aval(v)))]
    n = _aval(a).shape[-1]
    vt_da_v = _mm(_mH(v), _mm(ta, v))  # Vᴴ dA V (Vᵀ dA V for real matrices)
    tw = tnp.real(tnp.diagonal(vt_da_v, axis1=-2, axis2=-1))
    gaps = w[..., None, :] - w[..., :, None]  # w_j - w_i
    f = _inverse_gaps(gaps, tnp.max(tnp.abs(w), axis=-1), n)
    return [w, v], [tw, _mm(v, f * vt_da_v)]


def _inverse_gaps(gaps, scale, n):
    """1 / gaps off the diagonal, 0 on it, and nan where a gap is within n·eps of `scale`
    (the largest value of each matrix): a derivative through a repeated eigenvalue's (or
    singular value's) vectors is undefined, and would otherwise come out as a huge number."""
    from .. import numpy as tnp
    dt = _aval(gaps).dtype
    off = ~np.eye(n, dtype=bool)
    tol = (n * float(np.finfo(dt).eps)) * scale[..., None, None]
    tiny = tnp.abs(gaps) <= tol
    safe = tnp.where(off & ~tiny, gaps, 1.0)
    return tnp.where(off, tnp.where(tiny, np.nan, 1.0 / safe), 0.0)


def _svd_jvp(primals, tangents, *, full_matrices, compute_uv):
    from .. import numpy as tnp
    (a,), (ta,) = primals, tangents
    *_, m, n = _aval(a).shape
    k = min(m, n)
    if full_matrices and compute_uv and m != n:
        raise NotImplementedError("svd: derivatives with full_matrices=True need a square "
                                  "matrix (the extra columns of u or rows of vh are not "
                                  "unique); use full_matrices=False")
    u, s, vh = bind(svd_p, a, full_matrices=full_matrices, compute_uv=True)
    outs = [u, s, vh] if compute_uv else [s]
    if is_zero(ta):
        return outs, [Zero(tangent_aval(_aval(x))) for x in outs]
    complex_ = dtypes.is_complex(_aval(a).dtype)
    v = _mH(vh)
    dp = _mm(_mH(u), _mm(ta, v))
    dp_diag = tnp.diagonal(dp, axis1=-2, axis2=-1)
    ts = tnp.real(dp_diag)
    if not compute_uv:
        return outs, [ts]
    s_j, s_i = s[..., None, :], s[..., :, None]
    g = _inverse_gaps((s_j - s_i) * (s_j + s_i), tnp.max(s, axis=-1) ** 2, k)
    dss = dp * s_j
    sds = s_i * dp
    inner_u = g * (dss + _mH(dss))
    dv = _mm(v, g * (sds + _mH(sds)))
    inv_s = tnp.where(s_j == 0, 0.0, 1.0 / tnp.where(s_j == 0, 1.0, s_j))
    if complex_:  # the phases: U's turns by i im(dP_ii) / s_i, V's is held
        eye = np.eye(k, dtype=_aval(s).dtype)  # the real dtype: complex64 stays complex64
        inner_u = inner_u + (1j * tnp.imag(dp_diag)[..., None, :] * inv_s) * eye
    du = _mm(u, inner_u)
    if m > k:  # the part of dA V outside the span of U
        dav = _mm(ta, v)
        du = du + (dav - _mm(u, _mm(_mH(u), dav))) * inv_s
    if n > k:
        dau = _mm(_mH(ta), u)
        dv = dv + (dau - _mm(v, _mm(vh, dau))) * inv_s
    return outs, [du, ts, _mH(dv)]


def _qr_square_jvp(q, r, dx):
    """(dQ, dR) of X = QR with R square (X has at least as many rows as columns)."""
    from .. import numpy as tnp
    dx_rinv = _mT(triangular_solve(r, _mT(dx), False, True))  # dX R⁻¹
    c = _mm(_mH(q), dx_rinv)
    low = tnp.tril(c, -1)
    omega = low - _mH(low)  # Qᴴ dQ, skew-Hermitian
    if dtypes.is_complex(_aval(c).dtype):  # its diagonal: C's imaginary part (R's is real)
        eye = np.eye(_aval(c).shape[-1], dtype=dtypes.real_dtype(_aval(c).dtype))  # c64 stays
        omega = omega + 1j * tnp.imag(c) * eye
    c_upper = c - omega
    return dx_rinv - _mm(q, c_upper), _mm(c_upper, r)


def _qr_jvp(primals, tangents, *, full, pivoting):
    from .. import numpy as tnp
    (a,), (ta,) = primals, tangents
    *_, m, n = _aval(a).shape
    outs = qr(a, full, pivoting)
    q, r = outs[:2]
    # the permutation is piecewise constant: no derivative (int32, so a symbolic zero)
    tp = [Zero(tangent_aval(_aval(outs[2])))] if pivoting else []
    if is_zero(ta):
        return outs, [Zero(tangent_aval(_aval(q))), Zero(tangent_aval(_aval(r)))] + tp
    if full and m > n:
        raise NotImplementedError("qr: derivatives of the complete factorization of a matrix "
                                  "with more rows than columns are not defined (Q's extra "
                                  "columns are not unique); use mode='reduced' "
                                  "(scipy.linalg: mode='economic')")
    if pivoting:  # A P = Q R with P held: the rule below for the permuted tangent dA P
        ta = tnp.take_along_axis(ta, outs[2][..., None, :], axis=-1)
    if m >= n:
        return outs, list(_qr_square_jvp(q, r, ta)) + tp
    # A = [X Y] = Q [R1 R2]: X = Q R1 is square; R2 = Qᴴ Y, so dR2 = Qᴴ (dY − dQ R2)
    dq, dr1 = _qr_square_jvp(q, r[..., :m], ta[..., :m])
    dr2 = _mm(_mH(q), ta[..., m:] - _mm(dq, r[..., m:]))
    return outs, [dq, tnp.concatenate([dr1, dr2], axis=-1)] + tp


def _eig_jvp(primals, tangents, *, vectors):
    from .. import numpy as tnp
    (a,), (ta,) = primals, tangents
    w, v = bind(eig_p, a, vectors=True)
    outs = [w, v] if vectors else [w]
    if is_zero(ta):
        return outs, [Zero(tangent_aval(_aval(x))) for x in outs]
    n = _aval(a).shape[-1]
    vinv_da_v = solve(v, _mm(ta, v))  # V⁻¹ dA V
    tw = tnp.diagonal(vinv_da_v, axis1=-2, axis2=-1)
    if not vectors:
        return outs, [tw]
    f = _inverse_gaps(w[..., None, :] - w[..., :, None], tnp.max(tnp.abs(w), axis=-1), n)
    dv = _mm(v, f * vinv_da_v)
    # unit columns: take away each column's change along itself, re(v_jᴴ dv_j) v_j
    along = tnp.real(tnp.sum(tnp.conjugate(v) * dv, axis=-2))
    return outs, [tw, dv - v * along[..., None, :]]


jvp_rules[solve_p] = _solve_jvp
jvp_rules[triangular_solve_p] = _triangular_jvp
jvp_rules[inv_p] = _inv_jvp
jvp_rules[slogdet_p] = _slogdet_jvp
jvp_rules[cholesky_p] = _cholesky_jvp
jvp_rules[eigh_p] = _eigh_jvp
jvp_rules[svd_p] = _svd_jvp
jvp_rules[qr_p] = _qr_jvp
jvp_rules[eig_p] = _eig_jvp
transpose_rules[solve_p] = _solve_transpose
transpose_rules[triangular_solve_p] = _triangular_transpose


def _batch_rule(prim):
    """Batched operands carry their batch axis first, a leading stack dimension already."""
    def rule(args, batched, size, **params):
        from ..transforms.batching import materialize
        ops = [a if b else materialize(a, size) for a, b in zip(args, batched)]
        out = bind(prim, *ops, **params)
        return out, ([True] * len(out) if prim.multiple_results else True)
    return rule


def _register_batching():
    from ..transforms.batching import batching_rules
    for prim in DECOMPOSITIONS:
        batching_rules[prim] = _batch_rule(prim)


_register_batching()
