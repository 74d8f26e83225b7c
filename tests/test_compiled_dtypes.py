"""Compiled (jit) results for float32 and complex128 operands agree with NumPy's in shape,
dtype and value.

The coverage table (scripts/numpy_coverage.py) checks eager values in float32 and complex
and that `jit` lowers, but never runs the compiled code. Here the same kind of probe
arguments (float32, or complex128 with imaginary parts; a Hermitian positive definite
matrix) go through a few compiled programs, each computing many functions at once and
returning a dict, so a cold cache costs a handful of Numba compiles. Every output is
compared with NumPy (SciPy for `scipy.special`) on the same arguments, never with tracejit.
"""

from types import SimpleNamespace

import numpy as np
import pytest
import scipy.special as ss

import tracejit as tj
import tracejit.numpy as tnp
import tracejit.scipy.special as tss

TOL = {"float32": dict(rtol=2e-5, atol=1e-6), "complex": dict(rtol=1e-6, atol=1e-9)}


def _inputs(kind):
    """The coverage script's probe arrays, cast as its `_as_kind` casts them."""
    x = np.array([0.3, 0.7, 0.2, 0.9])
    y = np.array([0.5, 0.1, 0.8, 0.4])
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 3))
    m = a @ a.T + 3 * np.eye(3)
    t = rng.standard_normal((2, 2, 4))
    i = np.argsort(m, axis=1)
    if kind == "float32":
        x, y, m, t = (v.astype(np.float32) for v in (x, y, m, t))
    else:
        x, y, t = (v + 0.25j * np.flip(v) for v in (x, y, t))
        m = m + 0.1j * (np.tril(np.ones_like(m), -1) - np.triu(np.ones_like(m), 1))
    return x, y, m, t, i


# name -> lambda xp, sp, a: value, with xp numpy or tracejit.numpy, sp scipy.special or
# tracejit.scipy.special and a.x, a.y (shape 4), a.m (3x3, positive definite), a.t
# (2x2x4), a.i (int64 3x3 argsort of m's rows). Run for float32 and for complex.
ELEMENTWISE = {
    "sin": lambda xp, sp, a: xp.sin(a.x),
    "cos": lambda xp, sp, a: xp.cos(a.x),
    "arcsin": lambda xp, sp, a: xp.arcsin(a.x),
    "tanh": lambda xp, sp, a: xp.tanh(a.x),
    "arctanh": lambda xp, sp, a: xp.arctanh(a.x),
    "exp": lambda xp, sp, a: xp.exp(a.x),
    "expm1": lambda xp, sp, a: xp.expm1(a.x),
    "log": lambda xp, sp, a: xp.log(a.x),
    "log1p": lambda xp, sp, a: xp.log1p(a.x),
    "sqrt": lambda xp, sp, a: xp.sqrt(a.x),
    "reciprocal": lambda xp, sp, a: xp.reciprocal(a.x),
    "negative": lambda xp, sp, a: xp.negative(a.x),
    "sign": lambda xp, sp, a: xp.sign(a.x),
    "abs": lambda xp, sp, a: xp.abs(a.x),
    "angle": lambda xp, sp, a: xp.angle(a.x),
    "conj": lambda xp, sp, a: xp.conj(a.x),
    "real": lambda xp, sp, a: xp.real(a.x),
    "imag": lambda xp, sp, a: xp.imag(a.x),
    "rint": lambda xp, sp, a: xp.rint(a.x * 4),
    "sinc": lambda xp, sp, a: xp.sinc(a.x),
    "nan_to_num": lambda xp, sp, a: xp.nan_to_num(xp.log(a.x - 0.5)),
    "add": lambda xp, sp, a: xp.add(a.x, a.y),
    "subtract": lambda xp, sp, a: xp.subtract(a.x, a.y),
    "multiply": lambda xp, sp, a: xp.multiply(a.x, a.y),
    "divide": lambda xp, sp, a: xp.divide(a.x, a.y),
    "power": lambda xp, sp, a: xp.power(a.x, a.y),
    "float_power": lambda xp, sp, a: xp.float_power(a.x, a.y),
    "maximum": lambda xp, sp, a: xp.maximum(a.x, a.y),
    "equal": lambda xp, sp, a: xp.equal(a.x, a.y),
    "less": lambda xp, sp, a: xp.less(a.x, a.y),
    "isclose": lambda xp, sp, a: xp.isclose(a.x, a.y),
    "isfinite": lambda xp, sp, a: xp.isfinite(a.x),
    "clip": lambda xp, sp, a: xp.clip(a.x, a.y, a.x),
    "log_softmax": lambda xp, sp, a: sp.log_softmax(a.x),
    "softmax": lambda xp, sp, a: sp.softmax(a.x),
    "logsumexp": lambda xp, sp, a: sp.logsumexp(a.x),
    "xlogy": lambda xp, sp, a: sp.xlogy(a.x, a.y),
    "xlog1py": lambda xp, sp, a: sp.xlog1py(a.x, a.y),
}

REDUCTIONS = {
    "sum": lambda xp, sp, a: xp.sum(a.t, axis=1),
    "prod": lambda xp, sp, a: xp.prod(a.x),
    "mean": lambda xp, sp, a: xp.mean(a.m, axis=0),
    "var": lambda xp, sp, a: xp.var(a.x),
    "std": lambda xp, sp, a: xp.std(a.m, axis=1),
    "nanvar": lambda xp, sp, a: xp.nanvar(a.x),
    "max": lambda xp, sp, a: xp.max(a.x),
    "argmax": lambda xp, sp, a: xp.argmax(a.x),
    "cumsum": lambda xp, sp, a: xp.cumsum(a.x),
    "cumprod": lambda xp, sp, a: xp.cumprod(a.m, axis=1),
    "average": lambda xp, sp, a: xp.average(a.x, weights=xp.abs(a.y)),
    "any": lambda xp, sp, a: xp.any(a.x == a.y),
    "sort": lambda xp, sp, a: xp.sort(a.y),
    "partition": lambda xp, sp, a: xp.partition(a.y, 2),
    "kron": lambda xp, sp, a: xp.kron(a.x, a.y),
    "outer": lambda xp, sp, a: xp.outer(a.x, a.y),
    "convolve": lambda xp, sp, a: xp.convolve(a.x, a.y),
    "polyval": lambda xp, sp, a: xp.polyval(a.x, a.y),
    "einsum": lambda xp, sp, a: xp.einsum("ij,jk->ik", a.m, a.m),
    "tensordot": lambda xp, sp, a: xp.tensordot(a.t, a.t, axes=([0, 1], [0, 1])),
    "dot": lambda xp, sp, a: xp.dot(a.x, a.y),
    "vdot": lambda xp, sp, a: xp.vdot(a.x, a.y),
    "matmul": lambda xp, sp, a: xp.matmul(a.m, a.m[:, :2]),
    "trace": lambda xp, sp, a: xp.trace(a.m),
}

LINALG = {
    "cholesky": lambda xp, sp, a: xp.linalg.cholesky(a.m),
    "inv": lambda xp, sp, a: xp.linalg.inv(a.m),
    "slogdet": lambda xp, sp, a: tuple(xp.linalg.slogdet(a.m)),
    # eigenvectors and singular vectors up to phase: compare their magnitudes
    "eigh": lambda xp, sp, a: (lambda w, v: (w, xp.abs(v)))(*xp.linalg.eigh(a.m)),
    "svd": lambda xp, sp, a: (lambda u, s, vh: (xp.abs(u), s, xp.abs(vh)))(
        *xp.linalg.svd(a.m)),
    "lstsq": lambda xp, sp, a: tuple(xp.linalg.lstsq(a.m, a.m[:, 0])),
    "norm_2": lambda xp, sp, a: xp.linalg.norm(a.m, 2),
    "matrix_rank": lambda xp, sp, a: xp.linalg.matrix_rank(a.m),
}

FFT = {
    "fft": lambda xp, sp, a: xp.fft.fft(a.x),
    "ifft": lambda xp, sp, a: xp.fft.ifft(a.x),
    "fft2": lambda xp, sp, a: xp.fft.fft2(a.m),
    "fftn": lambda xp, sp, a: xp.fft.fftn(a.t),
    "ifftn": lambda xp, sp, a: xp.fft.ifftn(a.t, axes=(0, 2)),
    "hfft": lambda xp, sp, a: xp.fft.hfft(a.x),
    "irfft": lambda xp, sp, a: xp.fft.irfft(a.x),
    "irfft2": lambda xp, sp, a: xp.fft.irfft2(a.m),
    "irfftn": lambda xp, sp, a: xp.fft.irfftn(a.t),
    "fftshift": lambda xp, sp, a: xp.fft.fftshift(a.m),
}

# One dtype only, to keep the compiles few: moving elements around (dtype-generic) and more
# linear algebra in float32, and functions of real operands only (NumPy or SciPy refuses
# complex ones).
FLOAT32_ONLY = {
    "concatenate": lambda xp, sp, a: xp.concatenate([a.m, a.m[:1]]),
    "stack": lambda xp, sp, a: xp.stack([a.x, a.y], axis=1),
    "reshape": lambda xp, sp, a: xp.reshape(a.t, (4, 4)),
    "transpose": lambda xp, sp, a: xp.transpose(a.t, (2, 0, 1)),
    "pad": lambda xp, sp, a: xp.pad(a.x, 2),
    "tile": lambda xp, sp, a: xp.tile(a.x, 2),
    "repeat": lambda xp, sp, a: xp.repeat(a.x, 2),
    "roll": lambda xp, sp, a: xp.roll(a.x, 1),
    "flip": lambda xp, sp, a: xp.flip(a.m, 0),
    "rot90": lambda xp, sp, a: xp.rot90(a.m),
    "diag": lambda xp, sp, a: xp.diag(a.x),
    "tril": lambda xp, sp, a: xp.tril(a.m),
    "triu": lambda xp, sp, a: xp.triu(a.m, 1),
    "diff": lambda xp, sp, a: xp.diff(a.x),
    "gradient": lambda xp, sp, a: xp.gradient(a.x),
    "trapezoid": lambda xp, sp, a: xp.trapezoid(a.x),
    "vander": lambda xp, sp, a: xp.vander(a.x),
    "take_along_axis": lambda xp, sp, a: xp.take_along_axis(a.m, a.i, 1),
    "select": lambda xp, sp, a: xp.select([xp.real(a.x) > 0.5], [a.y], a.x),
    "svdvals": lambda xp, sp, a: xp.linalg.svdvals(a.m),
    "norm": lambda xp, sp, a: xp.linalg.norm(a.x),
    "matrix_power": lambda xp, sp, a: xp.linalg.matrix_power(a.m, 3),
    "tensorinv": lambda xp, sp, a: xp.linalg.tensorinv(a.m, 1),
    "arctan2": lambda xp, sp, a: xp.arctan2(a.x, a.y),
    "hypot": lambda xp, sp, a: xp.hypot(a.x, a.y),
    "copysign": lambda xp, sp, a: xp.copysign(a.x, a.y - 0.45),
    "fmod": lambda xp, sp, a: xp.fmod(a.x, a.y),
    "mod": lambda xp, sp, a: xp.mod(a.x - 0.5, a.y),
    "floor_divide": lambda xp, sp, a: xp.floor_divide(a.x, a.y),
    "divmod": lambda xp, sp, a: xp.divmod(a.x, a.y),
    "modf": lambda xp, sp, a: xp.modf(a.x * 3 - 1),
    "floor": lambda xp, sp, a: xp.floor(a.x * 3 - 1),
    "ceil": lambda xp, sp, a: xp.ceil(a.x * 3 - 1),
    "trunc": lambda xp, sp, a: xp.trunc(a.x * 3 - 1),
    "fix": lambda xp, sp, a: xp.fix(a.x * 3 - 1),
    "cbrt": lambda xp, sp, a: xp.cbrt(a.x - 0.5),
    "deg2rad": lambda xp, sp, a: xp.deg2rad(a.x),
    "rad2deg": lambda xp, sp, a: xp.rad2deg(a.x),
    "ldexp": lambda xp, sp, a: xp.ldexp(a.x, 3),
    "nextafter": lambda xp, sp, a: xp.nextafter(a.x, a.y),
    "heaviside": lambda xp, sp, a: xp.heaviside(a.x - 0.3, a.y),
    "signbit": lambda xp, sp, a: xp.signbit(a.x - 0.5),
    "logaddexp": lambda xp, sp, a: xp.logaddexp(a.x, a.y),
    "isneginf": lambda xp, sp, a: xp.isneginf(xp.log(a.x - 0.2)),
    "rfft": lambda xp, sp, a: xp.fft.rfft(a.x),
    "rfft2": lambda xp, sp, a: xp.fft.rfft2(a.m),
    "rfftn": lambda xp, sp, a: xp.fft.rfftn(a.t),
    "erf": lambda xp, sp, a: sp.erf(a.x),
    "erfc": lambda xp, sp, a: sp.erfc(a.x),
    "erfinv": lambda xp, sp, a: sp.erfinv(a.x - 0.5),
    "gammaln": lambda xp, sp, a: sp.gammaln(a.x),
    "digamma": lambda xp, sp, a: sp.digamma(a.x),
    "expit": lambda xp, sp, a: sp.expit(a.x),
    "logit": lambda xp, sp, a: sp.logit(a.x),
}

# Complex only: more linear algebra. Left out: solve (it agrees, but Numba's np.linalg.solve
# alone takes 2-3 s to compile).
COMPLEX_ONLY = {
    "qr": lambda xp, sp, a: (lambda q, r: (xp.abs(q), xp.abs(r)))(*xp.linalg.qr(a.m)),
    "eigvalsh": lambda xp, sp, a: xp.linalg.eigvalsh(a.m),
}

GROUPS = {
    "elementwise": (ELEMENTWISE, ("float32", "complex")),
    "reductions": (REDUCTIONS, ("float32", "complex")),
    "linalg": (LINALG, ("float32", "complex")),
    "fft": (FFT, ("float32", "complex")),
    "float32_only": (FLOAT32_ONLY, ("float32",)),
    "complex_only": (COMPLEX_ONLY, ("complex",)),
}
CASES = [(g, k) for g, (_, kinds) in GROUPS.items() for k in kinds]


def _leaves(out):
    if isinstance(out, (tuple, list)):
        return [x for o in out for x in _leaves(o)]
    return [np.asarray(out)]


def _program(cases, xp, sp):
    def program(x, y, m, t, i):
        a = SimpleNamespace(x=x, y=y, m=m, t=t, i=i)
        return {name: f(xp, sp, a) for name, f in cases.items()}
    return program


def _assert_like_numpy(got, want, kind):
    assert sorted(got) == sorted(want)
    bad = []
    for name in want:
        g, w = _leaves(got[name]), _leaves(want[name])
        if len(g) != len(w):
            bad.append(f"{name}: {len(g)} outputs, NumPy {len(w)}")
            continue
        for a, b in zip(g, w):
            if a.shape != b.shape or a.dtype != b.dtype:
                bad.append(f"{name}: {a.dtype}{list(a.shape)}, NumPy {b.dtype}{list(b.shape)}")
            elif b.dtype.kind in "fc":
                if not np.allclose(a, b, equal_nan=True, **TOL[kind]):
                    bad.append(f"{name}: max abs error {np.max(np.abs(a - b)):.3g}")
            elif not np.array_equal(a, b):
                bad.append(f"{name}: {a.tolist()}, NumPy {b.tolist()}")
    assert not bad, bad


@pytest.mark.parametrize("group,kind", CASES, ids=[f"{g}-{k}" for g, k in CASES])
def test_compiled_results_are_numpys(group, kind):
    cases = GROUPS[group][0]
    args = _inputs(kind)
    with np.errstate(all="ignore"):
        want = _program(cases, np, ss)(*args)
        got = tj.jit(_program(cases, tnp, tss))(*args)
    _assert_like_numpy(got, want, kind)


def test_compiled_gradients_of_float32_functions_are_numpys_derivatives():
    """jit(grad) of a sum of float32 elementwise functions: float32, the derivative
    computed with NumPy in float32."""
    x, y, *_ = _inputs("float32")

    def loss(x, y):
        return (tnp.sum(tnp.sin(x) * y) + tnp.sum(tnp.exp(x) ** 2) + tnp.sum(tnp.log1p(x))
                + tnp.sum(tnp.tanh(x * y)) + tnp.sum(tss.erf(x)) + tnp.sum(tnp.sqrt(x)))
    gx, gy = tj.jit(tj.grad(loss, argnums=(0, 1)))(x, y)
    one = np.float32(1)
    want_x = (np.cos(x) * y + 2 * np.exp(2 * x) + one / (one + x)
              + y * (one - np.tanh(x * y) ** 2) + np.float32(2 / np.sqrt(np.pi)) * np.exp(-x * x)
              + np.float32(0.5) / np.sqrt(x))
    want_y = np.sin(x) + x * (one - np.tanh(x * y) ** 2)
    for g, w in ((gx, want_x), (gy, want_y)):
        assert g.dtype == np.float32 and w.dtype == np.float32
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
