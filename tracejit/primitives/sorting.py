"""Order primitives: `argsort` (stable, along one axis) and `searchsorted` (insertion points
in a sorted 1-D array). Both have zero derivative; `sort` is argsort + gather in the front
end, so its derivative flows through the gather (whose transpose scatters the cotangent
back through the permutation). Compiled as call kernels: one `np.argsort(kind="mergesort")`
or `np.searchsorted` per row, in a loop over the other axes."""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..core import Primitive, abstract_eval_rules, bind, impl_rules
from ..errors import ShapeError
from ..ir import ShapedArray
from ..transforms.jvp import defjvp_zero

argsort_p = Primitive("argsort")


def _argsort_abstract(x, *, axis):
    if not (0 <= axis < x.ndim):
        raise ShapeError(f"argsort: bad axis {axis} for an array of shape {x.shape}")
    if x.dtype == np.bool_ or np.dtype(x.dtype).kind == "c":
        raise TypeError(f"argsort: unsupported dtype {x.dtype}")
    return ShapedArray(x.shape, np.dtype(dtypes.int64))


def _argsort_impl(x, *, axis):
    return np.argsort(np.asarray(x), axis=axis, kind="stable").astype(np.int64)


abstract_eval_rules[argsort_p] = _argsort_abstract
impl_rules[argsort_p] = _argsort_impl
defjvp_zero(argsort_p)


def argsort(x, axis: int):
    """Stable ascending argsort along `axis` (NaNs last, as NumPy)."""
    return bind(argsort_p, x, axis=int(axis))


searchsorted_p = Primitive("searchsorted")


def _searchsorted_abstract(a, v, *, side):
    if a.ndim != 1:
        raise ShapeError(f"searchsorted: the sorted array must be 1-D, not of shape {a.shape}")
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right' (got {side!r})")
    if a.dtype != v.dtype:
        raise TypeError(f"searchsorted: dtypes {a.dtype} and {v.dtype} differ")
    return ShapedArray(v.shape, np.dtype(dtypes.int64))


def _searchsorted_impl(a, v, *, side):
    return np.asarray(np.searchsorted(np.asarray(a), np.asarray(v), side=side),
                      dtype=np.int64)


abstract_eval_rules[searchsorted_p] = _searchsorted_abstract
impl_rules[searchsorted_p] = _searchsorted_impl
defjvp_zero(searchsorted_p)


def searchsorted(a, v, side: str = "left"):
    return bind(searchsorted_p, a, v, side=str(side))
