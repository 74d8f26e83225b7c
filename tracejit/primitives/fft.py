"""The discrete Fourier transform: one primitive, `fft`, over the trailing axes.

    fft[fft_type, fft_lengths] x

`fft_lengths` are the lengths of the last `len(fft_lengths)` axes of the transform (the
signal lengths, as for JAX's `lax.fft`); the NumPy front end (`tracejit.numpy.fft`) moves
the axes it transforms to the end, pads or crops them to `n=` / `s=` and applies the `norm=`
scaling with ordinary multiplies. The four types, with NumPy's default ("backward")
scaling:

    FFT    complex -> complex   y_k = sum_j x_j exp(-2 pi i j.k / n)
    IFFT   complex -> complex   y_j = (1/N) sum_k x_k exp(+2 pi i j.k / n)
    RFFT   real -> complex      the FFT's first n//2 + 1 entries along the last axis
    IRFFT  complex -> real      the inverse of RFFT: the input holds n//2 + 1 entries along
                                the last axis, the rest are taken as their conjugates

(N is the product of the lengths.) Output dtypes: complex64 for float32 and complex64
inputs, complex128 otherwise; IRFFT gives the matching real dtype.

Every type is linear (over the reals), so the JVP applies the primitive to the tangent.
Transposes use the bilinear pairing <a, b> = Re(sum a b) (JAX's convention: the transpose
of a complex linear map is its plain transpose, not its adjoint):

- the DFT matrix is symmetric, so FFT transposes to FFT and IFFT to IFFT;
- RFFT: Re(sum_k c_k exp(-2 pi i j.k / n)) is N IRFFT(c / w) read at -j (mod n on every
  axis), where w = (1, 2, ..., 2, 1) along the last axis (no trailing 1 when n is odd) is
  how often IRFFT counts each stored entry of a Hermitian spectrum;
- IRFFT: the transpose is (w / N) conj(RFFT(t)) = (w / N) RFFT(t read at -j).

Reading at -j (`flip_mod`: index 0 stays, the rest reverse) replaces a conjugation, so no
rule needs complex elementwise functions other than a multiply by constant weights.

Compiled code calls `np.fft` inside the Numba kernel, which the `rocket-fft` package
provides (`pip install rocket-fft`, or the `fft` extra); `require_compiled_fft` raises a
clear error when it is missing.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np

from .. import dtypes
from ..core import Primitive, abstract_eval_rules, bind, impl_rules
from ..errors import ShapeError
from ..ir import ShapedArray
from ..transforms.jvp import aval, deflinear, instantiate
from ..transforms.transpose import transpose_rules

FFT, IFFT, RFFT, IRFFT = "FFT", "IFFT", "RFFT", "IRFFT"
FFT_TYPES = (FFT, IFFT, RFFT, IRFFT)

fft_p = Primitive("fft")

# The np.fft function computing each type over the trailing axes (NumPy and rocket-fft).
_NUMPY_NAME = {FFT: "fftn", IFFT: "ifftn", RFFT: "rfftn", IRFFT: "irfftn"}


def _fft_abstract(x, *, fft_type, fft_lengths):
    if fft_type not in FFT_TYPES:
        raise ValueError(f"fft: unknown fft_type {fft_type!r} (one of {FFT_TYPES})")
    k = len(fft_lengths)
    if k == 0 or k > x.ndim or any(int(n) < 1 for n in fft_lengths):
        raise ShapeError(f"fft: fft_lengths {fft_lengths} do not fit an operand of shape "
                         f"{x.shape} (one positive length per trailing axis)")
    lengths = tuple(fft_lengths)
    batch, trailing = tuple(x.shape[:-k]), tuple(x.shape[-k:])
    dtype = np.dtype(x.dtype)
    is_complex = dtype.kind == "c"
    if fft_type == IRFFT:
        expected = lengths[:-1] + (lengths[-1] // 2 + 1,)
    else:
        expected = lengths
    if trailing != expected:
        raise ShapeError(f"fft: {fft_type} with fft_lengths {lengths} expects trailing axes "
                         f"{expected}, got an operand of shape {x.shape}")
    if fft_type == RFFT:
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"fft: RFFT needs a float32 or float64 operand, got {dtype}")
        return ShapedArray(batch + lengths[:-1] + (lengths[-1] // 2 + 1,),
                           dtypes.complex_dtype(dtype))
    if not is_complex:
        raise TypeError(f"fft: {fft_type} needs a complex64 or complex128 operand, got "
                        f"{dtype}")
    if fft_type == IRFFT:
        return ShapedArray(batch + lengths, dtypes.real_dtype(dtype))
    return ShapedArray(x.shape, dtype)


def _fft_impl(x, *, fft_type, fft_lengths):
    x = np.asarray(x)
    k = len(fft_lengths)
    axes = tuple(range(x.ndim - k, x.ndim))
    s = {"s": tuple(fft_lengths)} if fft_type == IRFFT else {}
    out = getattr(np.fft, _NUMPY_NAME[fft_type])(x, axes=axes, **s)
    aval = _fft_abstract(ShapedArray(x.shape, x.dtype), fft_type=fft_type,
                         fft_lengths=fft_lengths)
    return np.asarray(out, dtype=aval.dtype)


abstract_eval_rules[fft_p] = _fft_abstract
impl_rules[fft_p] = _fft_impl
deflinear(fft_p)


def fft(x, fft_type: str, fft_lengths):
    """The `fft_type` transform of `x` over its last `len(fft_lengths)` axes."""
    return bind(fft_p, x, fft_type=str(fft_type),
                fft_lengths=tuple(int(n) for n in fft_lengths))


# -- transposition -----------------------------------------------------------------------------

def flip_mod(x, axes):
    """`x` read at -j (mod n) along each of `axes`: index 0 stays where it is, the others
    reverse. For a real x, RFFT(flip_mod(x)) = conj(RFFT(x)) (flipping its transform axes),
    and IRFFT(conj(y)) = flip_mod(IRFFT(y))."""
    from .structural import concatenate, rev
    shape = tuple(aval(x).shape)
    for axis in axes:
        if shape[axis] > 1:
            head = _slice_axis(x, shape, axis, 0, 1)
            tail = rev(_slice_axis(x, shape, axis, 1, shape[axis]), (axis,))
            x = concatenate([head, tail], axis)
    return x


def _trailing(x, k: int) -> tuple:
    nd = aval(x).ndim
    return tuple(range(nd - k, nd))


def _slice_axis(x, shape, axis: int, lo: int, hi: int):
    from .structural import slice_
    start = [0] * len(shape)
    limit = list(shape)
    start[axis], limit[axis] = lo, hi
    return slice_(x, start, limit)


def half_spectrum_weights(n: int) -> np.ndarray:
    """w: how often IRFFT counts each of the n//2 + 1 stored entries of a Hermitian
    spectrum of length n (1 for the zero frequency and, for even n, the Nyquist one; 2 for
    the others, which stand for themselves and their conjugates)."""
    w = np.full(n // 2 + 1, 2.0)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    return w


def _fft_transpose(ct, x, *, fft_type, fft_lengths):
    ct = instantiate(ct)
    k = len(fft_lengths)
    if fft_type in (FFT, IFFT):
        return [fft(ct, fft_type, fft_lengths)]
    size = math.prod(fft_lengths)
    w = half_spectrum_weights(fft_lengths[-1])
    if fft_type == RFFT:
        weights = (size / w).astype(aval(ct).dtype)
        return [flip_mod(fft(ct * weights, IRFFT, fft_lengths), _trailing(ct, k))]
    spectrum = fft(flip_mod(ct, _trailing(ct, k)), RFFT, fft_lengths)
    return [spectrum * (w / size).astype(aval(spectrum).dtype)]


transpose_rules[fft_p] = _fft_transpose


# -- batching: the transform acts on trailing axes, the batch axis is the first -------------

def _fft_batch(args, batched, size, *, fft_type, fft_lengths):
    (x,) = args
    return fft(x, fft_type, fft_lengths), True


def _register_batching():
    from ..transforms.batching import batching_rules
    batching_rules[fft_p] = _fft_batch


_register_batching()


# -- compiled code ---------------------------------------------------------------------------

def have_compiled_fft() -> bool:
    """Whether `rocket-fft` (which compiles np.fft for Numba) is installed."""
    return importlib.util.find_spec("rocket_fft") is not None


def require_compiled_fft() -> None:
    if not have_compiled_fft():
        raise NotImplementedError(
            "jit of an fft needs the rocket-fft package, which makes np.fft available to "
            "Numba's compiled code: pip install rocket-fft (or pip install 'tracejit[fft]'). "
            "Without it, run the function uncompiled (tracejit.disable_jit()).")


def numba_text(x: str, ndim: int, fft_type: str, fft_lengths) -> str:
    """The np.fft call (compiled by rocket-fft) computing the primitive on array `x`."""
    k = len(fft_lengths)
    axes = tuple(range(ndim - k, ndim))
    s = f"s={tuple(int(n) for n in fft_lengths)}, " if fft_type == IRFFT else ""
    return f"np.fft.{_NUMPY_NAME[fft_type]}({x}, {s}axes={axes})"
