"""NumPy's order of complex numbers: lexicographic, by the real part and then the imaginary.

The comparison and extremum primitives take real operands only; the functions here build
the complex versions from the parts, so comparisons, maximum/minimum, max/min, argmax/
argmin, sort and argsort of complex arrays trace, differentiate (a derivative follows the
element chosen, as for real values) and compile with no complex-specific loop code. NaNs
are not ordered as NumPy orders them: a NaN in a part propagates through the comparisons
of that part only.
"""

from __future__ import annotations

import numpy as np

from ..primitives import elementwise as ew
from ..primitives import structural as st


def _parts(a, b):
    return ew.real(a), ew.imag(a), ew.real(b), ew.imag(b)


def less(a, b):
    ra, ia, rb, ib = _parts(a, b)
    return ew.or_(ew.lt(ra, rb), ew.and_(ew.eq(ra, rb), ew.lt(ia, ib)))


def less_equal(a, b):
    ra, ia, rb, ib = _parts(a, b)
    return ew.or_(ew.lt(ra, rb), ew.and_(ew.eq(ra, rb), ew.le(ia, ib)))


def greater(a, b):
    return less(b, a)


def greater_equal(a, b):
    return less_equal(b, a)


COMPARISONS = {ew.lt: less, ew.le: less_equal, ew.gt: greater, ew.ge: greater_equal}


def _isnan(z):
    return ew.or_(ew.isnan(ew.real(z)), ew.isnan(ew.imag(z)))


def _pick(keep_a, a, b, ignore_nan):
    """a where `keep_a`, else b; a NaN operand wins (np.maximum) or, with `ignore_nan`, the
    other one does (np.fmax)."""
    first, second = (b, a) if ignore_nan else (a, b)
    return st.select(_isnan(a), first, st.select(_isnan(b), second, st.select(keep_a, a, b)))


def maximum(a, b, ignore_nan=False):
    return _pick(greater_equal(a, b), a, b, ignore_nan)


def minimum(a, b, ignore_nan=False):
    return _pick(less_equal(a, b), a, b, ignore_nan)


def _extreme_parts(a, axes, largest):
    """The extreme real part over `axes` and, among the elements that have it, the extreme
    imaginary part (both kept as length-1 axes)."""
    from . import _reductions as rd
    from ._ufuncs import equal, where
    reduce = rd.max if largest else rd.min
    re, im = ew.real(a), ew.imag(a)
    top_re = reduce(re, axis=axes, keepdims=True)
    im_there = where(equal(re, top_re), im, -np.inf if largest else np.inf)
    return re, im, top_re, reduce(im_there, axis=axes, keepdims=True)


def reduce_extremum(a, axes, largest):
    """max (or min) of complex `a` over `axes`, the reduced axes dropped."""
    from ._base import shape
    _, _, top_re, top_im = _extreme_parts(a, axes, largest)
    out = ew.complex_(top_re, top_im)
    kept = tuple(d for i, d in enumerate(shape(a)) if i not in axes)
    return st.reshape(out, kept)


def arg_extremum(a, axis, largest):
    """The first index along `axis` of the max (or min) of complex `a`."""
    from . import _reductions as rd
    from ._ufuncs import equal, logical_and
    re, im, top_re, top_im = _extreme_parts(a, (axis,), largest)
    hit = logical_and(equal(re, top_re), equal(im, top_im))
    return rd.argmax(hit, axis=axis)


def argsort(a, axis):
    """Stable: by the imaginary part, then (stably) by the real part."""
    from ._sorting import lexsort
    return lexsort([ew.imag(a), ew.real(a)], axis=axis)
