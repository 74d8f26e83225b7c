"""tracejit.numpy.fft: values against numpy.fft (every function, norm, n=/s=/axes=, odd and
even lengths, size-1 axes, float32 and float64), the `fft` primitive's transposes against
dense matrices, derivatives against finite differences, compiled code (rocket-fft) against
the interpreter, and vmap."""

import warnings

import numpy as np
import pytest
from conftest import checked_ir

import tracejit as tj
import tracejit.numpy as tnp
from tracejit.core import eval_ir
from tracejit.errors import ShapeError
from tracejit.ir import ShapedArray
from tracejit.primitives import fft as ff
from tracejit.testing import check_grads
from tracejit.transforms.transpose import UndefinedPrimal, transpose_rules

RNG = np.random.default_rng(0)
NORMS = (None, "backward", "ortho", "forward")


def _real(shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


def _complex(shape, dtype=np.complex128):
    return (RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)).astype(dtype)


X = _real((3, 4, 5))
Z = _complex((3, 4, 5))
X32 = X.astype(np.float32)
Z32 = Z.astype(np.complex64)
V6, V7, V1 = _real(6), _real(7), _real(1)


def _assert_close(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    single = want.dtype in (np.float32, np.complex64)
    tol = (2e-5 if single else 1e-11) * max(1.0, float(np.max(np.abs(want), initial=0.0)))
    np.testing.assert_allclose(got, want, rtol=0, atol=tol)


def _numpy(name, a, kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # s= without axes=
        return getattr(np.fft, name)(a, **kwargs)


# -- values -----------------------------------------------------------------------------------

def _value_cases():
    cases = []
    one_axis_n = (None, 1, 4, 5, 8)
    for norm in NORMS:
        for a, tag in ((X, "f64"), (Z, "c128"), (X32, "f32"), (Z32, "c64")):
            for name in ("fft", "ifft", "irfft", "hfft"):
                for n in one_axis_n:
                    cases.append((name, tag, a, {"n": n, "norm": norm}))
                cases.append((name, tag, a, {"axis": 0, "norm": norm}))
                cases.append((name, tag, a, {"n": 3, "axis": 1, "norm": norm}))
            if tag in ("f64", "f32"):
                for name in ("rfft", "ihfft"):
                    for n in one_axis_n:
                        cases.append((name, tag, a, {"n": n, "norm": norm}))
                    cases.append((name, tag, a, {"n": 6, "axis": -2, "norm": norm}))
            nd = ["fftn", "ifftn", "fft2", "ifft2", "irfftn", "irfft2"]
            if tag in ("f64", "f32"):
                nd += ["rfftn", "rfft2"]
            for name in nd:
                for kw in ({}, {"s": (3, 6), "axes": (0, 2)}, {"s": (2, -1), "axes": (2, 0)},
                           {"axes": (1,)}, {"s": (5, 4)}, {"axes": (1, 1)},
                           {"s": (1, 1, 1), "axes": (0, 1, 2)}):
                    if name.endswith("2") and "axes" in kw and len(kw["axes"]) != 2:
                        continue
                    cases.append((name, tag, a, dict(kw, norm=norm)))
    # size-1 axes and 1-D inputs of odd and even length
    for name in ("fft", "ifft", "rfft", "ihfft"):
        for v in (V1, V6, V7):
            cases.append((name, f"len{v.size}", v, {}))
    for name in ("irfft", "hfft"):
        cases.append((name, "len1", V1, {"n": 1}))
        cases.append((name, "len1 n=3", V1, {"n": 3}))
    cases.append(("fftn", "size-1 axis", X[:, :1], {"axes": (0, 1)}))
    cases.append(("rfftn", "size-1 axis", X[:1], {"axes": (0, 2)}))
    cases.append(("irfftn", "size-1 axis", Z[:1, :, :1], {"axes": (0, 2), "s": (1, 1)}))
    cases.append(("fft", "int", np.arange(6), {}))
    cases.append(("rfft", "int", np.arange(6), {}))
    return cases


VALUE_CASES = _value_cases()


@pytest.mark.parametrize("name,tag,a,kwargs", VALUE_CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[3]}" for c in VALUE_CASES])
def test_values_match_numpy(name, tag, a, kwargs):
    want = _numpy(name, a, kwargs)
    fn = getattr(tnp.fft, name)
    _assert_close(fn(a, **kwargs), want)  # on concrete arrays: the NumPy rules
    ir = checked_ir(lambda x: fn(x, **kwargs), a)  # traced, then interpreted
    _assert_close(eval_ir(ir, [a])[0], want)


def test_frequencies_and_shifts():
    for n in (1, 4, 5):
        for d in (1.0, 0.25):
            _assert_close(tnp.fft.fftfreq(n, d), np.fft.fftfreq(n, d))
            _assert_close(tnp.fft.rfftfreq(n, d), np.fft.rfftfreq(n, d))
    for axes in (None, 0, (1,), (0, 2), (-1, 1)):
        _assert_close(tnp.fft.fftshift(X, axes), np.fft.fftshift(X, axes))
        _assert_close(tnp.fft.ifftshift(Z, axes), np.fft.ifftshift(Z, axes))
        ir = checked_ir(lambda x, a=axes: tnp.fft.ifftshift(tnp.fft.fftshift(x, a), a), X)
        _assert_close(eval_ir(ir, [X])[0], X)
    # the spacing may be traced: d/dd of sum(fftfreq(n, d) * w)
    w = _real(5)
    check_grads(lambda d: tnp.sum(tnp.fft.fftfreq(5, d) * w), (np.array(0.3),), order=2)
    check_grads(lambda d: tnp.sum(tnp.fft.rfftfreq(6, d) * w[:4]), (np.array(0.7),))


def test_errors_as_numpy():
    with pytest.raises(ValueError, match="Invalid number of FFT data points"):
        tnp.fft.fft(V6, n=0)
    with pytest.raises(ValueError, match="Invalid number of FFT data points"):
        tnp.fft.irfft(V1)  # n = 2 (1 - 1)
    with pytest.raises(ValueError, match="Invalid norm"):
        tnp.fft.fft(V6, norm="bogus")
    with pytest.raises(ValueError, match="Shape and axes"):
        tnp.fft.fftn(X, s=(2, 2), axes=(0,))
    with pytest.raises(np.exceptions.AxisError):
        tnp.fft.fft(X, axis=3)
    with pytest.raises(TypeError, match="complex"):
        tnp.fft.rfft(Z)
    with pytest.raises(NotImplementedError, match="out="):
        tnp.fft.fft(V6, out=np.empty(6, complex))


def test_primitive_abstract_eval():
    ae = ff._fft_abstract
    f32, f64 = np.dtype(np.float32), np.dtype(np.float64)
    c64, c128 = np.dtype(np.complex64), np.dtype(np.complex128)
    assert ae(ShapedArray((2, 6), f32), fft_type="RFFT", fft_lengths=(6,)) == \
        ShapedArray((2, 4), c64)
    assert ae(ShapedArray((2, 7), f64), fft_type="RFFT", fft_lengths=(2, 7)) == \
        ShapedArray((2, 4), c128)
    assert ae(ShapedArray((3, 4), c64), fft_type="IRFFT", fft_lengths=(3, 7)) == \
        ShapedArray((3, 7), f32)
    assert ae(ShapedArray((5,), c128), fft_type="IFFT", fft_lengths=(5,)) == \
        ShapedArray((5,), c128)
    with pytest.raises(ShapeError, match="trailing axes"):
        ae(ShapedArray((5,), c128), fft_type="FFT", fft_lengths=(4,))
    with pytest.raises(ShapeError, match="trailing axes"):
        ae(ShapedArray((5,), c128), fft_type="IRFFT", fft_lengths=(5,))
    with pytest.raises(ShapeError, match="fft_lengths"):
        ae(ShapedArray((5,), c128), fft_type="FFT", fft_lengths=(1, 5))
    with pytest.raises(TypeError, match="complex"):
        ae(ShapedArray((5,), f64), fft_type="FFT", fft_lengths=(5,))
    with pytest.raises(TypeError, match="float32 or float64"):
        ae(ShapedArray((5,), c128), fft_type="RFFT", fft_lengths=(5,))


# -- transposes against dense matrices ------------------------------------------------------

def _basis(shape, dtype):
    """Real coordinates of a (complex) space: unit vectors, then i times unit vectors."""
    size = int(np.prod(shape))
    units = [np.eye(size)[k].reshape(shape) for k in range(size)]
    if np.dtype(dtype).kind == "c":
        return [u.astype(dtype) for u in units] + [(1j * u).astype(dtype) for u in units]
    return [u.astype(dtype) for u in units]


def _coords(y):
    y = np.asarray(y)
    if y.dtype.kind == "c":
        return np.concatenate([y.real.ravel(), y.imag.ravel()])
    return y.ravel()


def _pairing(shape, dtype):
    """G with <a, b> = Re(sum a b) = coords(a) G coords(b)."""
    size = int(np.prod(shape))
    if np.dtype(dtype).kind == "c":
        return np.diag(np.concatenate([np.ones(size), -np.ones(size)]))
    return np.eye(size)


TRANSPOSE_CASES = [(t, lengths, batch, dt) for t in ff.FFT_TYPES
                   for lengths, batch in (((1,), ()), ((2,), ()), ((5,), (2,)), ((6,), ()),
                                          ((3, 4), ()), ((2, 5), (2,)), ((2, 3, 2), ()))
                   for dt in ("f64", "f32")]


@pytest.mark.parametrize("fft_type,lengths,batch,dt", TRANSPOSE_CASES)
def test_transpose_is_the_dense_transpose(fft_type, lengths, batch, dt):
    """The rule's matrix is G_in Mᵀ G_out, M the map's matrix in real coordinates and G the
    pairing Re(sum a b): the plain transpose of FFT and IFFT (the DFT matrix is symmetric),
    and for RFFT/IRFFT the half spectrum's weights."""
    real, cplx = (np.float32, np.complex64) if dt == "f32" else (np.float64, np.complex128)
    in_dtype = real if fft_type == "RFFT" else cplx
    in_shape = batch + (lengths[:-1] + (lengths[-1] // 2 + 1,) if fft_type == "IRFFT"
                        else lengths)
    in_aval = ShapedArray(in_shape, np.dtype(in_dtype))
    out_aval = ff._fft_abstract(in_aval, fft_type=fft_type, fft_lengths=lengths)
    params = {"fft_type": fft_type, "fft_lengths": lengths}
    m = np.stack([_coords(ff.fft(e, **params)) for e in _basis(in_shape, in_dtype)], 1)
    rule = transpose_rules[ff.fft_p]
    cols = []
    for e in _basis(out_aval.shape, out_aval.dtype):
        (ct,) = rule(e, UndefinedPrimal(in_aval), **params)
        assert ct.shape == in_shape and ct.dtype == in_dtype, (ct.shape, ct.dtype)
        cols.append(_coords(ct))
    t = np.stack(cols, 1)
    expected = _pairing(in_shape, in_dtype) @ m.T @ _pairing(out_aval.shape, out_aval.dtype)
    np.testing.assert_allclose(t, expected, atol=1e-4 if dt == "f32" else 1e-11)


# -- derivatives ------------------------------------------------------------------------------

W8, W5, W4 = _real(8), _real(5), _real(4)
W34, W33, W36 = _real((3, 4)), _real((3, 3)), _real((3, 6))
XC = _real((6, 2))  # a complex signal of length 6 as (real, imaginary) columns
XC5 = _real((5, 2))
XC34 = _real((3, 4, 2))


def _c(x):
    return x[..., 0] + 1j * x[..., 1]


def _re_im(y, w):
    """A real loss reading both parts of a complex result."""
    return tnp.sum(tnp.real(y) * w) + tnp.sum(tnp.imag(y) * (w[::-1] if w.ndim else w))


GRAD_CASES = [
    ("fft |.|^2 ortho", lambda x: tnp.sum(tnp.abs(tnp.fft.fft(x, norm="ortho")) ** 2),
     (V6,), 2),
    ("fft real n=8", lambda x: tnp.sum(tnp.real(tnp.fft.fft(x, n=8)) * W8), (V7,), 1),
    ("fft complex in", lambda x: _re_im(tnp.fft.fft(_c(x)), V6), (XC,), 2),
    ("ifft n=5 forward", lambda x: _re_im(tnp.fft.ifft(_c(x), n=5, norm="forward"), W5),
     (XC,), 1),
    ("rfft even", lambda x: _re_im(tnp.fft.rfft(x), W4), (V6,), 2),
    ("rfft odd", lambda x: _re_im(tnp.fft.rfft(x, norm="ortho"), W4), (V7,), 1),
    ("rfft n=8 padded", lambda x: tnp.sum(tnp.abs(tnp.fft.rfft(x, n=8)) ** 2), (V6,), 1),
    ("irfft even", lambda x: tnp.sum(tnp.fft.irfft(_c(x), n=6) * V6), (XC[:4],), 2),
    ("irfft odd", lambda x: tnp.sum(tnp.fft.irfft(_c(x), n=7, norm="forward") * V7),
     (XC[:4],), 1),
    ("irfft default n", lambda x: tnp.sum(tnp.fft.irfft(_c(x)) ** 2), (XC5,), 1),
    ("irfft cropped", lambda x: tnp.sum(tnp.fft.irfft(_c(x), n=4, norm="ortho") * W4),
     (XC,), 1),
    ("irfft n=1", lambda x: tnp.sum(tnp.fft.irfft(_c(x), n=1) * 3.0), (XC[:2],), 1),
    ("rfft n=1", lambda x: _re_im(tnp.fft.rfft(x, n=1), np.ones(1)), (V6,), 1),
    ("fft2 s axes", lambda x: _re_im(tnp.fft.fft2(x, s=(4, 3), axes=(1, 0)), W34),
     (X[0],), 1),
    ("ifftn complex", lambda x: _re_im(tnp.fft.ifftn(_c(x), norm="ortho"), W34), (XC34,), 1),
    ("rfftn", lambda x: _re_im(tnp.fft.rfftn(x, axes=(0, 1)), W33), (X[:, 0],), 1),
    ("rfft2 odd", lambda x: tnp.sum(tnp.abs(tnp.fft.rfft2(x, s=(3, 5))) ** 2), (X[0],), 1),
    ("irfftn", lambda x: tnp.sum(tnp.fft.irfftn(_c(x), s=(3, 6)) * W36),
     (XC34,), 1),
    ("irfft2 odd", lambda x: tnp.sum(tnp.fft.irfft2(_c(x), s=(3, 5)) ** 2), (XC34,), 1),
    ("hfft", lambda x: tnp.sum(tnp.fft.hfft(_c(x), n=7) * V7), (XC[:4],), 1),
    ("ihfft", lambda x: _re_im(tnp.fft.ihfft(x, norm="forward"), W4), (V7,), 1),
    ("fftshift", lambda x: tnp.sum(tnp.fft.fftshift(x) * W34), (W34,), 1),
    ("float32 rfft", lambda x: _re_im(tnp.fft.rfft(x), W4.astype(np.float32)),
     (V6.astype(np.float32),), 1),
    ("float32 irfft", lambda x: tnp.sum(tnp.fft.irfft(_c(x), n=6) * V6.astype(np.float32)),
     (XC[:4].astype(np.float32),), 1),
]


@pytest.mark.parametrize("name,fn,args,order", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_gradients_match_finite_differences(name, fn, args, order):
    checked_ir(tj.grad(fn), *args)
    check_grads(fn, args, order=order)


def test_round_trip_gradient_is_exact():
    """irfft(rfft(x)) is the identity, so the gradient of sum(w * it) is w."""
    for x in (V6, V7):
        w = _real(x.shape)
        g = tj.grad(lambda x, w=w: tnp.sum(tnp.fft.irfft(tnp.fft.rfft(x), n=x.shape[0]) * w))(x)
        np.testing.assert_allclose(g, w, atol=1e-12)


def test_parseval_gradient():
    """sum |fft(x)|^2 = n sum x^2, so its gradient is 2 n x."""
    g = tj.grad(lambda x: tnp.sum(tnp.abs(tnp.fft.fft(x)) ** 2))(V7)
    np.testing.assert_allclose(g, 2 * 7 * V7, rtol=1e-12)


# -- vmap --------------------------------------------------------------------------------------

def test_vmap():
    xs = _real((4, 3))  # four signals of length 4, batched along axis 1
    got = tj.vmap(lambda x: tnp.fft.rfft(x, n=6), in_axes=1)(xs)
    _assert_close(got, np.fft.rfft(xs.T, n=6))
    zs = Z[:, :, :3]
    got = tj.vmap(lambda z: tnp.fft.fft2(z, axes=(1, 0), norm="ortho"), in_axes=2,
                  out_axes=1)(zs)
    _assert_close(got, np.moveaxis(np.fft.fft2(np.moveaxis(zs, 2, 0), axes=(2, 1),
                                               norm="ortho"), 0, 1))
    # per-example gradients
    loss = lambda x: tnp.sum(tnp.fft.irfft(tnp.fft.rfft(x) * np.arange(1.0, 5.0)) * V6)
    got = tj.vmap(tj.grad(loss))(np.stack([V6, V6[::-1]]))
    want = np.stack([tj.grad(loss)(V6), tj.grad(loss)(V6[::-1].copy())])
    np.testing.assert_allclose(got, want, atol=1e-12)


# -- compiled code -----------------------------------------------------------------------------

def _many(x, z, x32, empty):
    """Many transforms in one program (one compile): every type, both precisions, moved
    and cropped axes, norms, and an empty batch dimension."""
    return {
        "fft": tnp.fft.fft(z, n=6, axis=1),
        "ifft": tnp.fft.ifft(x, norm="ortho"),
        "rfft": tnp.fft.rfft(x, axis=0, n=4),
        "irfft": tnp.fft.irfft(z, n=7, norm="forward"),
        "fft2": tnp.fft.fft2(x, s=(3, 2), axes=(2, 0)),
        "rfftn": tnp.fft.rfftn(x),
        "irfftn": tnp.fft.irfftn(z, axes=(0, 1)),
        "hfft": tnp.fft.hfft(z[0]),
        "ihfft": tnp.fft.ihfft(x, axis=1),
        "shift": tnp.fft.fftshift(tnp.fft.fftn(z)),
        "f32 rfft": tnp.fft.rfft(x32),
        "f32 ifft": tnp.fft.ifftn(x32, axes=(1,)),
        "f32 irfft": tnp.fft.irfft(tnp.fft.rfft(x32), n=5),
        "empty": tnp.fft.fft(empty),
    }


def _loss(x, z):
    """A real loss through every type, for jit(grad)."""
    y = tnp.sum(tnp.abs(tnp.fft.fft(x, n=6, axis=1, norm="ortho")) ** 2)
    y = y + tnp.sum(tnp.real(tnp.fft.ifft2(z)) * x)
    y = y + tnp.sum(tnp.fft.irfft(tnp.fft.rfft(x, axis=0) * z[:2, :, :1], n=3, axis=0) ** 3)
    return y + tnp.sum(tnp.fft.hfft(z, n=5) * tnp.sin(x))


LOSS_ARGS = (X, _real((3, 4, 5)))


def test_jit_matches_the_interpreter():
    args = (X, Z, X32, np.zeros((0, 3)))
    fn = tj.jit(_many)
    got = fn(*args)
    with tj.disable_jit():
        want = tj.jit(_many)(*args)
    assert set(got) == set(want)
    for k in want:
        _assert_close(got[k], want[k])
    _assert_close(got["rfft"], np.fft.rfft(X, axis=0, n=4))
    _assert_close(got["f32 rfft"], np.fft.rfft(X32))
    assert "np.fft.rfftn(" in fn.lower(*args).source


def test_jit_grad_matches_the_interpreter():
    x, z = LOSS_ARGS
    value, grad = tj.jit(tj.value_and_grad(_loss))(x, z)
    want_value, want_grad = tj.value_and_grad(_loss)(x, z)
    np.testing.assert_allclose(value, want_value, rtol=1e-11)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-10, atol=1e-10)
    check_grads(lambda x: _loss(x, z), (x,))


def test_jit_without_rocket_fft_says_how_to_install(monkeypatch):
    monkeypatch.setattr(ff, "have_compiled_fft", lambda: False)
    with pytest.raises(NotImplementedError, match="pip install rocket-fft"):
        tj.jit(lambda x: tnp.fft.rfft(x * 2.0))(V7)
