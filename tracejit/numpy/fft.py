"""`tracejit.numpy.fft`: NumPy's `numpy.fft` on traced (and concrete) arrays, differentiable.

Every transform is the one primitive `fft` (`primitives/fft.py`) over trailing axes: the
functions here move the axes they transform to the end, pad with zeros or crop them to `n=`
/ `s=`, bind the primitive and move the axes back. `norm=` ("backward", the default;
"ortho"; "forward") is an ordinary multiply of the result. Dtypes follow NumPy 2: float32
and complex64 inputs give complex64 (float32 for the real-output transforms), everything
else complex128 (float64).

`hfft` and `ihfft` are NumPy's `irfft(conj(a))` and `conj(rfft(a))`, written as index
reversals (`fft.flip_mod`) of the real signal instead of conjugations. `fftfreq`,
`rfftfreq`, `fftshift` and `ifftshift` are compositions of the rest. Under `jit` the
transforms run in compiled code through the `rocket-fft` package (see docs/fft.md).
"""

from __future__ import annotations

import math

import numpy as np

from .. import dtypes
from ..primitives import fft as ff
from ..primitives import structural as st
from ._base import as_operand, aval, cast, normalize_axis, shape, static_int

__all__ = ["fft", "ifft", "rfft", "irfft", "hfft", "ihfft", "fft2", "ifft2", "fftn", "ifftn",
           "rfft2", "irfft2", "rfftn", "irfftn", "fftfreq", "rfftfreq", "fftshift",
           "ifftshift"]

_NORMS = (None, "backward", "ortho", "forward")


def _check_norm(norm) -> None:
    if norm not in _NORMS:
        raise ValueError(f'Invalid norm value {norm}; should be "backward", "ortho" or '
                         '"forward".')


def _swap_direction(norm):
    _check_norm(norm)
    return {None: "forward", "backward": "forward", "ortho": "ortho",
            "forward": "backward"}[norm]


def _no_out(out) -> None:
    if out is not None:
        raise NotImplementedError("numpy.fft with out= is not supported by tracejit (traced "
                                  "arrays are values; use the returned array)")


def _length(n) -> int:
    n = static_int(n, "n")
    if n < 1:
        raise ValueError(f"Invalid number of FFT data points ({n}) specified.")
    return n


def _operand(a, fft_type: str):
    """`a` with the dtype the transform takes (NumPy's conversions)."""
    a = as_operand(a)
    dtype = np.dtype(aval(a).dtype)
    if fft_type == ff.RFFT:
        if dtype.kind == "c":
            raise TypeError(f"rfft of a complex array ({dtype}) is not defined: it transforms "
                            "real signals (use fft)")
        return cast(a, dtype if dtype in (np.float32, np.float64) else np.float64)
    return cast(a, dtypes.complex_dtype(dtype))


def _fit(a, axis: int, n: int):
    """`a` cropped or zero-padded (at the end) to length `n` along `axis`."""
    s = tuple(shape(a))
    if s[axis] == n:
        return a
    if s[axis] > n:
        start, limit = [0] * len(s), list(s)
        limit[axis] = n
        return st.slice_(a, start, limit)
    high = [0] * len(s)
    high[axis] = n - s[axis]
    zero = np.zeros((), aval(a).dtype)[()]
    return st.pad(a, zero, [0] * len(s), high)


def _scale(y, fft_type: str, norm, size: int):
    """The `norm=` factor; the primitive's inverses already divide by `size`."""
    _check_norm(norm)
    if norm in (None, "backward"):
        return y
    inverse = fft_type in (ff.IFFT, ff.IRFFT)
    if norm == "ortho":
        factor = math.sqrt(size) if inverse else 1.0 / math.sqrt(size)
    else:  # "forward"
        factor = float(size) if inverse else 1.0 / size
    return y * factor


def _transform(a, fft_type: str, lengths, axes, norm):
    """One primitive over distinct `axes` (the last is the half-spectrum one for RFFT and
    IRFFT), of signal lengths `lengths`."""
    _check_norm(norm)
    a = _operand(a, fft_type)
    nd = len(shape(a))
    axes = [normalize_axis(ax, nd) for ax in axes]
    lengths = [_length(n) for n in lengths]
    for i, (ax, n) in enumerate(zip(axes, lengths)):
        last = i == len(axes) - 1
        a = _fit(a, ax, n // 2 + 1 if (fft_type == ff.IRFFT and last) else n)
    k = len(axes)
    trailing = list(range(nd - k, nd))
    moved = axes != trailing
    if moved:
        a = _move(a, axes, trailing)
    y = ff.fft(a, fft_type, lengths)
    y = _scale(y, fft_type, norm, math.prod(lengths))
    return _move(y, trailing, axes) if moved else y


def _move(a, source, destination):
    from ._shape import moveaxis
    return moveaxis(a, source, destination)


def _not_scalar(s) -> None:
    if not s:
        raise np.exceptions.AxisError("axis -1 is out of bounds for array of dimension 0")


def _one(a, fft_type: str, n, axis, norm, out):
    _no_out(out)
    a = as_operand(a)
    s = tuple(shape(a))
    _not_scalar(s)
    axis = normalize_axis(axis, len(s))
    if n is None:
        n = 2 * (s[axis] - 1) if fft_type == ff.IRFFT else s[axis]
    return _transform(a, fft_type, [n], [axis], norm)


# -- one axis ----------------------------------------------------------------------------------

def fft(a, n=None, axis=-1, norm=None, out=None):
    """The one-dimensional discrete Fourier transform (as `numpy.fft.fft`)."""
    return _one(a, ff.FFT, n, axis, norm, out)


def ifft(a, n=None, axis=-1, norm=None, out=None):
    """The one-dimensional inverse discrete Fourier transform (as `numpy.fft.ifft`)."""
    return _one(a, ff.IFFT, n, axis, norm, out)


def rfft(a, n=None, axis=-1, norm=None, out=None):
    """The discrete Fourier transform of a real signal: the n//2 + 1 non-negative
    frequencies (as `numpy.fft.rfft`)."""
    return _one(a, ff.RFFT, n, axis, norm, out)


def irfft(a, n=None, axis=-1, norm=None, out=None):
    """The inverse of `rfft`: a real signal of length `n` (default 2 (m - 1)) from its
    m = n//2 + 1 non-negative frequencies (as `numpy.fft.irfft`)."""
    return _one(a, ff.IRFFT, n, axis, norm, out)


def hfft(a, n=None, axis=-1, norm=None, out=None):
    """The transform of a Hermitian-symmetric signal given by its first half: a real
    spectrum of length `n` (as `numpy.fft.hfft`, which is irfft(conj(a)))."""
    _no_out(out)
    a = as_operand(a)
    _not_scalar(tuple(shape(a)))
    axis = normalize_axis(axis, len(shape(a)))
    if n is None:
        n = 2 * (shape(a)[axis] - 1)
    y = _one(a, ff.IRFFT, n, axis, _swap_direction(norm), None)
    return ff.flip_mod(y, (axis,))  # irfft(conj(a)) is irfft(a) read at -j


def ihfft(a, n=None, axis=-1, norm=None, out=None):
    """The inverse of `hfft`: the half spectrum of a real signal whose transform is
    Hermitian (as `numpy.fft.ihfft`, which is conj(rfft(a)))."""
    _no_out(out)
    a = _operand(a, ff.RFFT)
    _not_scalar(tuple(shape(a)))
    axis = normalize_axis(axis, len(shape(a)))
    n = shape(a)[axis] if n is None else _length(n)
    a = ff.flip_mod(_fit(a, axis, n), (axis,))  # conj(rfft(a)) is rfft of a read at -j
    return _one(a, ff.RFFT, n, axis, _swap_direction(norm), None)


# -- several axes ------------------------------------------------------------------------------

def _cook_nd_args(a, s, axes, invreal: bool):
    """NumPy's reading of `s` and `axes`: the lengths and (normalized) axes to transform."""
    shp = tuple(shape(a))
    nd = len(shp)
    if s is not None:
        s = [s] if isinstance(s, (int, np.integer)) else list(s)
    if axes is not None:
        axes = [axes] if isinstance(axes, (int, np.integer)) else list(axes)
        axes = [normalize_axis(ax, nd, "axes") for ax in axes]
    shapeless = s is None
    if s is None:
        s = list(shp) if axes is None else [shp[ax] for ax in axes]
    if axes is None:  # NumPy deprecates s without axes; it means the last len(s) axes
        axes = [normalize_axis(ax, nd, "axes") for ax in range(-len(s), 0)]
    if len(s) != len(axes):
        raise ValueError("Shape and axes have different lengths.")
    if invreal and shapeless and axes:
        s[-1] = (shp[axes[-1]] - 1) * 2
    lengths = []
    for i, (n, ax) in enumerate(zip(s, axes)):
        if n is None or n == -1:  # the whole axis (for irfftn's last axis: 2 (m - 1))
            n = 2 * (shp[ax] - 1) if (invreal and i == len(axes) - 1 and n is None) \
                else shp[ax]
        lengths.append(_length(n))
    return lengths, axes


def _nd(a, fft_type: str, s, axes, norm, out):
    _no_out(out)
    _check_norm(norm)
    a = as_operand(a)
    real_in = fft_type == ff.RFFT
    lengths, axes = _cook_nd_args(a, s, axes, fft_type == ff.IRFFT)
    if not axes:
        if fft_type in (ff.RFFT, ff.IRFFT):
            raise ValueError(f"{'rfftn' if real_in else 'irfftn'}: at least one axis must be "
                             "transformed")
        return a
    if len(set(axes)) == len(axes):
        return _transform(a, fft_type, lengths, axes, norm)
    # An axis named twice is transformed twice, one axis at a time, in NumPy's order.
    steps = list(zip(lengths, axes))
    if fft_type == ff.RFFT:
        a = _transform(a, ff.RFFT, lengths[-1:], axes[-1:], norm)
        for n, ax in steps[:-1][::-1]:
            a = _transform(a, ff.FFT, [n], [ax], norm)
    elif fft_type == ff.IRFFT:
        for n, ax in steps[:-1]:
            a = _transform(a, ff.IFFT, [n], [ax], norm)
        a = _transform(a, ff.IRFFT, lengths[-1:], axes[-1:], norm)
    else:
        for n, ax in steps[::-1]:
            a = _transform(a, fft_type, [n], [ax], norm)
    return a


def fftn(a, s=None, axes=None, norm=None, out=None):
    """The N-dimensional discrete Fourier transform (as `numpy.fft.fftn`)."""
    return _nd(a, ff.FFT, s, axes, norm, out)


def ifftn(a, s=None, axes=None, norm=None, out=None):
    """The N-dimensional inverse discrete Fourier transform (as `numpy.fft.ifftn`)."""
    return _nd(a, ff.IFFT, s, axes, norm, out)


def rfftn(a, s=None, axes=None, norm=None, out=None):
    """The N-dimensional transform of a real array, the last axis halved (as
    `numpy.fft.rfftn`)."""
    return _nd(a, ff.RFFT, s, axes, norm, out)


def irfftn(a, s=None, axes=None, norm=None, out=None):
    """The inverse of `rfftn` (as `numpy.fft.irfftn`)."""
    return _nd(a, ff.IRFFT, s, axes, norm, out)


def fft2(a, s=None, axes=(-2, -1), norm=None, out=None):
    """The two-dimensional discrete Fourier transform (as `numpy.fft.fft2`)."""
    return _nd(a, ff.FFT, s, axes, norm, out)


def ifft2(a, s=None, axes=(-2, -1), norm=None, out=None):
    """The two-dimensional inverse discrete Fourier transform (as `numpy.fft.ifft2`)."""
    return _nd(a, ff.IFFT, s, axes, norm, out)


def rfft2(a, s=None, axes=(-2, -1), norm=None, out=None):
    """The two-dimensional transform of a real array (as `numpy.fft.rfft2`)."""
    return _nd(a, ff.RFFT, s, axes, norm, out)


def irfft2(a, s=None, axes=(-2, -1), norm=None, out=None):
    """The inverse of `rfft2` (as `numpy.fft.irfft2`)."""
    return _nd(a, ff.IRFFT, s, axes, norm, out)


# -- frequencies and shifts --------------------------------------------------------------------

def fftfreq(n, d=1.0, device=None):
    """Sample frequencies of an `fft` of length `n` with sample spacing `d` (which may be
    traced): [0, 1, ..., (n-1)//2, -(n//2), ..., -1] / (n d)."""
    n = static_int(n, "n")
    k = np.concatenate([np.arange(0, (n - 1) // 2 + 1), np.arange(-(n // 2), 0)])
    return _frequencies(k, n, d)


def rfftfreq(n, d=1.0, device=None):
    """Sample frequencies of an `rfft` of length `n`: [0, 1, ..., n//2] / (n d)."""
    n = static_int(n, "n")
    return _frequencies(np.arange(0, n // 2 + 1), n, d)


def _frequencies(k, n, d):
    from ._ufuncs import divide, multiply
    return multiply(k.astype(np.int64), divide(1.0, multiply(n, d)))


def _shift(x, axes, sign: int):
    from ._shape import roll
    x = as_operand(x)
    s = tuple(shape(x))
    if axes is None:
        axes = tuple(range(len(s)))
    elif isinstance(axes, (int, np.integer)):
        return roll(x, sign * (s[int(axes)] // 2), int(axes))
    else:
        axes = tuple(axes)
    return roll(x, [sign * (s[ax] // 2) for ax in axes], axes)


def fftshift(x, axes=None):
    """The zero frequency moved to the middle of the spectrum (as `numpy.fft.fftshift`)."""
    return _shift(x, axes, 1)


def ifftshift(x, axes=None):
    """The inverse of `fftshift` (as `numpy.fft.ifftshift`)."""
    return _shift(x, axes, -1)
