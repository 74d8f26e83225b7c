"""NumPy's order of complex numbers: lexicographic, by the real part and then the imaginary.

The comparison and extremum primitives take real operands only; the functions here build
the complex versions from the parts, so comparisons, maximum/minimum, max/min, argmax/
argmin, sort and argsort of complex arrays trace, differentiate (a derivative follows the
element chosen, as for real values) and compile with no complex-specific loop code.

NaNs as NumPy has them: `a < b` needs both imaginary parts to be non-NaN when the real
parts decide (so a NaN in a part makes the comparisons false, as for real values);
maximum/minimum, max/min and argmax/argmin pick the first element with a NaN part, fmax/
fmin the other operand (the first when both have one); sort puts values with a NaN part
last, in NumPy's order: x + yj, x + nanj, nan + yj, nan + nanj, each class sorted by its
non-NaN part.
"""

from __future__ import annotations

import numpy as np

from ..primitives import elementwise as ew
from ..primitives import structural as st


def _parts(a, b):
    return ew.real(a), ew.imag(a), ew.real(b), ew.imag(b)


def _real_decides(ra, ia, rb, ib):
    """ra < rb, counted only when neither imaginary part is NaN (NumPy's rule)."""
    return ew.and_(ew.lt(ra, rb), ew.and_(ew.eq(ia, ia), ew.eq(ib, ib)))


def less(a, b):
    ra, ia, rb, ib = _parts(a, b)
    return ew.or_(_real_decides(ra, ia, rb, ib), ew.and_(ew.eq(ra, rb), ew.lt(ia, ib)))


def less_equal(a, b):
    ra, ia, rb, ib = _parts(a, b)
    return ew.or_(_real_decides(ra, ia, rb, ib), ew.and_(ew.eq(ra, rb), ew.le(ia, ib)))


def greater(a, b):
    return less(b, a)


def greater_equal(a, b):
    return less_equal(b, a)


COMPARISONS = {ew.lt: less, ew.le: less_equal, ew.gt: greater, ew.ge: greater_equal}


def _isnan(z):
    return ew.or_(ew.isnan(ew.real(z)), ew.isnan(ew.imag(z)))


def _pick(keep_a, a, b, ignore_nan):
    """a where `keep_a`, else b; a NaN operand wins, the first when both are NaN
    (np.maximum), or, with `ignore_nan`, the other one does, the first when both are
    (np.fmax)."""
    if ignore_nan:
        return st.select(_isnan(b), a, st.select(_isnan(a), b, st.select(keep_a, a, b)))
    return st.select(_isnan(a), a, st.select(_isnan(b), b, st.select(keep_a, a, b)))


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


def _first(mask, axes):
    """`mask` kept only at its first True element over `axes` (in C order)."""
    from . import _reductions as rd
    from ._base import shape
    from ._creation import arange
    from ._ufuncs import equal, logical_and, where
    s = shape(mask)
    pos = 0
    for ax in sorted(axes):
        pos = pos * s[ax] + st.reshape(arange(s[ax]), tuple(s[ax] if i == ax else 1
                                                              for i in range(len(s))))
    first = rd.min(where(mask, pos, int(np.prod([s[i] for i in axes]))), axis=axes,
                   keepdims=True)
    return logical_and(mask, equal(pos, first))


def _chosen(mask, x, axes):
    """x at the one element of `mask` over `axes`, exactly (its sign of zero and NaN too;
    a max, so the derivative goes to that element)."""
    from . import _reductions as rd
    from ._ufuncs import where
    return rd.max(where(mask, x, -np.inf), axis=axes, keepdims=True)


def reduce_extremum(a, axes, largest):
    """max (or min) of complex `a` over `axes`, the reduced axes dropped: NumPy's
    maximum.reduce, which keeps the first of equal values and propagates the first
    element with a NaN part."""
    from . import _reductions as rd
    from ._base import shape
    from ._ufuncs import equal, logical_and, where
    re, im, top_re, top_im = _extreme_parts(a, axes, largest)
    nan = _isnan(a)
    hit = where(rd.any(nan, axis=axes, keepdims=True), nan,
                logical_and(equal(re, top_re), equal(im, top_im)))
    first = _first(hit, axes)
    out = ew.complex_(_chosen(first, re, axes), _chosen(first, im, axes))
    kept = tuple(d for i, d in enumerate(shape(a)) if i not in axes)
    return st.reshape(out, kept)


def arg_extremum(a, axis, largest):
    """The first index along `axis` of the max (or min) of complex `a`, or of its first
    element with a NaN part (as NumPy)."""
    from . import _reductions as rd
    from ._ufuncs import equal, logical_and, where
    re, im, top_re, top_im = _extreme_parts(a, (axis,), largest)
    hit = logical_and(equal(re, top_re), equal(im, top_im))
    nan = _isnan(a)
    hit = where(rd.any(nan, axis=axis, keepdims=True), nan, hit)
    return rd.argmax(hit, axis=axis)


def argsort(a, axis):
    """Stable, in NumPy's order: the class of NaN parts (none, imaginary, real, both), then
    the real part, then the imaginary part."""
    from ._base import aval, cast
    from ._sorting import lexsort
    re, im = ew.real(a), ew.imag(a)
    dtype = aval(re).dtype  # a float key like the parts: one sort specialization compiled
    nan_class = ew.add(ew.mul(cast(ew.isnan(re), dtype), 2.0), cast(ew.isnan(im), dtype))
    return lexsort([im, re, nan_class], axis=axis)
