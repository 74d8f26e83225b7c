"""Shape manipulation: reshape, transpose, joining, splitting, flipping, tiling, padding,
diagonals and triangles, all lowered to structural primitives."""

from __future__ import annotations

import builtins

import numpy as np

from ..core import Tracer
from ..errors import ShapeError
from ..primitives import structural as st
from ._base import (
    as_operand,
    aval,
    broadcast_shapes,
    cast,
    normalize_axes,
    normalize_axis,
    promote_args,
    result_dtype,
    shape,
    static_int,
    static_shape,
)
from ._base import broadcast_to as _broadcast_to


def reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    if order != "C":
        raise NotImplementedError("tracejit.numpy.reshape supports order='C' only")
    if shape is None:
        shape = newshape
    a = as_operand(a)
    old = _shape(a)
    new = list(static_shape(shape))
    size = int(np.prod(old, dtype=np.int64))
    if new.count(-1) > 1:
        raise ValueError("can only specify one unknown dimension")
    if -1 in new:
        known = int(np.prod([d for d in new if d != -1], dtype=np.int64))
        if known == 0 or size % known:
            raise ShapeError(f"cannot reshape array of size {size} into shape {tuple(new)}")
        new[new.index(-1)] = size // known
    if int(np.prod(new, dtype=np.int64)) != size:
        raise ShapeError(f"cannot reshape array of size {size} into shape {tuple(new)}")
    return st.reshape(a, new)


_shape = shape


def ravel(a, order="C"):
    return reshape(a, (-1,), order=order)


def transpose(a, axes=None):
    a = as_operand(a)
    nd = len(_shape(a))
    if axes is None:
        perm = tuple(reversed(range(nd)))
    else:
        perm = tuple(normalize_axis(ax, nd) for ax in axes)
        if sorted(perm) != list(range(nd)):
            raise ValueError("axes don't match array")
    return st.transpose(a, perm)


permute_dims = transpose


def swapaxes(a, axis1, axis2):
    a = as_operand(a)
    nd = len(_shape(a))
    perm = list(range(nd))
    i, j = normalize_axis(axis1, nd), normalize_axis(axis2, nd)
    perm[i], perm[j] = perm[j], perm[i]
    return st.transpose(a, perm)


def moveaxis(a, source, destination):
    a = as_operand(a)
    nd = len(_shape(a))
    src = [normalize_axis(s, nd) for s in np.atleast_1d(source)]
    dst = [normalize_axis(d, nd) for d in np.atleast_1d(destination)]
    if len(src) != len(dst):
        raise ValueError("`source` and `destination` arguments must have the same number of "
                         "elements")
    order = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return st.transpose(a, order)


def expand_dims(a, axis):
    a = as_operand(a)
    s = list(_shape(a))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    nd = len(s) + len(axes)
    norm = sorted(normalize_axis(ax, nd) for ax in axes)
    if len(set(norm)) != len(norm):
        raise ValueError("repeated axis")
    for ax in norm:
        s.insert(ax, 1)
    return st.reshape(a, s)


def squeeze(a, axis=None):
    a = as_operand(a)
    s = _shape(a)
    if axis is None:
        axes = tuple(i for i, d in enumerate(s) if d == 1)
    else:
        axes = normalize_axes(axis, len(s))
        for i in axes:
            if s[i] != 1:
                raise ValueError("cannot select an axis to squeeze out which has size not "
                                 "equal to one")
    return st.reshape(a, [d for i, d in enumerate(s) if i not in axes])


def broadcast_to(array, shape):
    return _broadcast_to(as_operand(array), static_shape(shape))


def broadcast_arrays(*args):
    args = [as_operand(a) for a in args]
    target = broadcast_shapes(*[_shape(a) for a in args])
    return tuple(_broadcast_to(a, target) for a in args)


def atleast_1d(*arys):
    res = [reshape(a, (1,)) if len(_shape(as_operand(a))) == 0 else as_operand(a)
           for a in arys]
    return res[0] if len(res) == 1 else res


def atleast_2d(*arys):
    res = []
    for a in arys:
        a = as_operand(a)
        nd = len(_shape(a))
        res.append(reshape(a, (1,) * (2 - nd) + _shape(a)) if nd < 2 else a)
    return res[0] if len(res) == 1 else res


def concatenate(arrays, axis=0, out=None, dtype=None):
    if out is not None:
        raise NotImplementedError("tracejit.numpy.concatenate does not support out=")
    arrays = [as_operand(a) for a in arrays]
    if not arrays:
        raise ValueError("need at least one array to concatenate")
    if axis is None:
        arrays = [ravel(a) for a in arrays]
        axis = 0
    if any(len(_shape(a)) == 0 for a in arrays):
        raise ValueError("zero-dimensional arrays cannot be concatenated")
    dt = np.dtype(dtype) if dtype is not None else result_dtype(*arrays)
    ax = normalize_axis(axis, len(_shape(arrays[0])))
    for a in arrays:
        if len(_shape(a)) != len(_shape(arrays[0])):
            raise ShapeError("all the input arrays must have same number of dimensions, got "
                             + ", ".join(str(_shape(x)) for x in arrays))
    arrays = [cast(a, dt) for a in arrays if _shape(a)[ax] > 0] or [cast(arrays[0], dt)]
    return st.concatenate(arrays, ax)


concat = concatenate


def stack(arrays, axis=0, out=None, dtype=None):
    arrays = [as_operand(a) for a in arrays]
    if not arrays:
        raise ValueError("need at least one array to stack")
    shapes = {_shape(a) for a in arrays}
    if len(shapes) > 1:
        raise ShapeError("all input arrays must have the same shape, got "
                         + ", ".join(str(_shape(a)) for a in arrays))
    nd = len(_shape(arrays[0])) + 1
    ax = normalize_axis(axis, nd)
    return concatenate([expand_dims(a, ax) for a in arrays], axis=ax, out=out, dtype=dtype)


def hstack(tup, dtype=None):
    arrs = [atleast_1d(a) for a in tup]
    return concatenate(arrs, axis=0 if len(_shape(arrs[0])) == 1 else 1, dtype=dtype)


def vstack(tup, dtype=None):
    return concatenate([atleast_2d(a) for a in tup], axis=0, dtype=dtype)


def column_stack(tup):
    arrs = []
    for a in tup:
        a = as_operand(a)
        arrs.append(reshape(a, (-1, 1)) if len(_shape(a)) < 2 else a)
    return concatenate(arrs, axis=1)


def split(ary, indices_or_sections, axis=0):
    return _split(ary, indices_or_sections, axis, even=True)


def array_split(ary, indices_or_sections, axis=0):
    return _split(ary, indices_or_sections, axis, even=False)


def _split(ary, indices_or_sections, axis, even):
    a = as_operand(ary)
    s = _shape(a)
    ax = normalize_axis(axis, len(s))
    n = s[ax]
    if isinstance(indices_or_sections, (int, np.integer)):
        sections = int(indices_or_sections)
        if sections <= 0:
            raise ValueError("number sections must be larger than 0.")
        if even and n % sections:
            raise ValueError("array split does not result in an equal division")
        base, extra = divmod(n, sections)
        sizes = [base + 1] * extra + [base] * (sections - extra)
        bounds = np.cumsum([0] + sizes).tolist()
    else:
        points = [builtins.min(builtins.max(int(p) if p >= 0 else n + int(p), 0), n)
                  for p in indices_or_sections]
        bounds = [0] + points + [n]
    parts = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        hi = builtins.max(lo, hi)
        start, limit = [0] * len(s), list(s)
        start[ax], limit[ax] = lo, hi
        parts.append(st.slice_(a, start, limit))
    return parts


def flip(m, axis=None):
    m = as_operand(m)
    return st.rev(m, normalize_axes(axis, len(_shape(m))))


def fliplr(m):
    return flip(m, 1)


def flipud(m):
    return flip(m, 0)


def roll(a, shift, axis=None):
    a = as_operand(a)
    if axis is None:
        return reshape(roll(ravel(a), shift, 0), _shape(a))
    # As NumPy: shift and axis broadcast against each other (shifts on one axis add up).
    shifts, axes = (b.ravel().tolist() for b in np.broadcast_arrays(np.asarray(shift),
                                                                    np.asarray(axis)))
    for sh, ax in zip(shifts, axes):
        s = _shape(a)
        ax = normalize_axis(ax, len(s))
        n = s[ax]
        if n == 0:
            continue
        k = static_int(sh, "shift") % n
        if k == 0:
            continue
        first_start, first_limit = [0] * len(s), list(s)
        first_start[ax] = n - k
        second_start, second_limit = [0] * len(s), list(s)
        second_limit[ax] = n - k
        a = st.concatenate([st.slice_(a, first_start, first_limit),
                            st.slice_(a, second_start, second_limit)], ax)
    return a


def tile(A, reps):
    A = as_operand(A)
    reps = (static_int(reps, "reps"),) if np.ndim(reps) == 0 else tuple(
        static_int(r, "reps") for r in reps)
    s = _shape(A)
    nd = builtins.max(len(s), len(reps))
    s = (1,) * (nd - len(s)) + tuple(s)
    reps = (1,) * (nd - len(reps)) + reps
    A = st.reshape(A, s)
    # Interleave (rep, dim) pairs, broadcast, merge.
    expanded = []
    dims = []
    for i, d in enumerate(s):
        expanded += [reps[i], d]
        dims.append(2 * i + 1)
    out = st.broadcast_in_dim(A, expanded, dims)
    return st.reshape(out, [r * d for r, d in zip(reps, s)])


def repeat(a, repeats, axis=None):
    a = as_operand(a)
    if axis is None:
        a = ravel(a)
        axis = 0
    s = _shape(a)
    ax = normalize_axis(axis, len(s))
    if isinstance(repeats, Tracer):
        raise TypeError("tracejit.numpy.repeat needs concrete repeats (the result shape "
                        "depends on them)")
    reps = np.asarray(repeats)
    if reps.ndim == 0:
        r = int(reps)
        if r < 0:
            raise ValueError("repeats may not contain negative values.")
        expanded = list(s[:ax + 1]) + [r] + list(s[ax + 1:])
        dims = list(range(ax + 1)) + list(range(ax + 2, len(s) + 1))
        out = st.broadcast_in_dim(a, expanded, dims)
        new = list(s)
        new[ax] = s[ax] * r
        return st.reshape(out, new)
    if reps.shape != (s[ax],):
        raise ValueError(f"repeats of shape {reps.shape} do not match axis of length {s[ax]}")
    from ._indexing import take
    return take(a, np.repeat(np.arange(s[ax]), reps), axis=ax)


def pad(array, pad_width, mode="constant", **kwargs):
    if mode != "constant":
        raise NotImplementedError(f"tracejit.numpy.pad supports mode='constant' only, got "
                                  f"{mode!r}")
    a = as_operand(array)
    s = _shape(a)
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (len(s), 2))
    if (widths < 0).any():
        raise ValueError("index can't contain negative values")
    cv = kwargs.pop("constant_values", 0)
    if kwargs:
        raise TypeError(f"pad() got unexpected keyword arguments {sorted(kwargs)}")
    cvs = np.broadcast_to(np.asarray(cv) if not isinstance(cv, Tracer) else np.zeros(()),
                          (len(s), 2))
    if isinstance(cv, Tracer) or np.all(cvs == cvs.flat[0]):
        value = cv if isinstance(cv, Tracer) else cvs.flat[0]
        value = cast(value if not isinstance(value, Tracer) else value, aval(a).dtype)
        if isinstance(value, Tracer) and value.shape != ():
            raise NotImplementedError("traced constant_values must be a scalar")
        return st.pad(a, value, widths[:, 0].tolist(), widths[:, 1].tolist())
    # Different constants per side: pad one axis at a time.
    out = a
    for ax in range(len(s)):
        for side in (0, 1):
            w = [[0, 0]] * len(s)
            w[ax] = [widths[ax, 0], 0] if side == 0 else [0, widths[ax, 1]]
            lo = [p[0] for p in w]
            hi = [p[1] for p in w]
            out = st.pad(out, cast(cvs[ax, side], aval(a).dtype), lo, hi)
    return out


def diagonal(a, offset=0, axis1=0, axis2=1):
    a = as_operand(a)
    s = _shape(a)
    nd = len(s)
    ax1, ax2 = normalize_axis(axis1, nd), normalize_axis(axis2, nd)
    if ax1 == ax2:
        raise ValueError("axis1 and axis2 cannot be the same")
    offset = static_int(offset, "offset")
    rows = np.arange(s[ax1])
    cols = rows + offset
    ok = (cols >= 0) & (cols < s[ax2])
    rows, cols = rows[ok], cols[ok]
    rest = [i for i in range(nd) if i not in (ax1, ax2)]
    moved = st.transpose(a, [ax1, ax2] + rest)
    from ..primitives.indexing import gather
    idx = np.stack([rows, cols], axis=-1).astype(np.int64)
    if len(rows) == 0:
        from ._creation import zeros
        return zeros([s[i] for i in rest] + [0], aval(a).dtype)
    picked = gather(moved, idx)  # (k, *rest)
    return st.transpose(picked, list(range(1, len(rest) + 1)) + [0])


def diag(v, k=0):
    v = as_operand(v)
    s = _shape(v)
    k = static_int(k, "k")
    if len(s) == 2:
        return diagonal(v, k)
    if len(s) != 1:
        raise ValueError("Input must be 1- or 2-d.")
    n = s[0] + builtins.abs(k)
    rows = np.arange(s[0]) + builtins.max(-k, 0)
    cols = np.arange(s[0]) + builtins.max(k, 0)
    from ..primitives.indexing import scatter_add
    from ._creation import zeros
    idx = np.stack([rows, cols], axis=-1).astype(np.int64)
    return scatter_add(zeros((n, n), aval(v).dtype), idx, v)


def trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    from ._reductions import sum
    return sum(diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype, out=out)


def _triangle(m, k, lower):
    m = as_operand(m)
    s = _shape(m)
    if len(s) == 1:  # as NumPy: a 1-d input broadcasts against the (n, n) mask
        s = (s[0], s[0])
        m = _broadcast_to(m, s)
    if len(s) < 2:
        raise ValueError("input array must be at least 2-d")
    k = static_int(k, "k")
    rows = np.arange(s[-2])[:, None]
    cols = np.arange(s[-1])[None, :]
    mask = (cols <= rows + k) if lower else (cols >= rows + k)
    zero = np.zeros((), aval(m).dtype)[()]
    (mb,), _ = promote_args(np.broadcast_to(mask, s), dtype=bool)
    return st.select(mb, m, zero)


def tril(m, k=0):
    return _triangle(m, k, lower=True)


def triu(m, k=0):
    return _triangle(m, k, lower=False)



def atleast_3d(*arys):
    res = []
    for a in arys:
        a = as_operand(a)
        s = _shape(a)
        if len(s) == 0:
            a = reshape(a, (1, 1, 1))
        elif len(s) == 1:
            a = reshape(a, (1, s[0], 1))
        elif len(s) == 2:
            a = reshape(a, s + (1,))
        res.append(a)
    return res[0] if len(res) == 1 else tuple(res)


def dstack(tup):
    return concatenate([atleast_3d(a) for a in tup], axis=2)


def _split_min_ndim(name, nd_min, axis_of):
    def fn(ary, indices_or_sections):
        a = as_operand(ary)
        nd = len(_shape(a))
        if nd < nd_min:
            raise ValueError(f"{name} only works on arrays of {nd_min} or more dimensions")
        return split(a, indices_or_sections, axis_of(nd))
    fn.__name__ = name
    fn.__doc__ = f"Like numpy.{name} (static split points)."
    return fn


hsplit = _split_min_ndim("hsplit", 1, lambda nd: 1 if nd > 1 else 0)
vsplit = _split_min_ndim("vsplit", 2, lambda nd: 0)
dsplit = _split_min_ndim("dsplit", 3, lambda nd: 2)


def append(arr, values, axis=None):
    arr, values = as_operand(arr), as_operand(values)
    if axis is None:
        return concatenate([ravel(arr) if len(_shape(arr)) != 1 else arr, ravel(values)],
                           axis=0)
    return concatenate([arr, values], axis=axis)


def _static_positions(obj, n: int, what: str):
    """`obj` of insert/delete (int, slice, sequence of ints) as a concrete int array, or
    None for a scalar int."""
    if isinstance(obj, Tracer):
        raise TypeError(f"{what} needs concrete indices: the result's shape depends on them")
    if isinstance(obj, slice):
        return np.arange(*obj.indices(n))
    idx = np.asarray(obj)
    if idx.size == 0:
        return idx.astype(np.int64).reshape(-1)
    if idx.dtype.kind not in "iub":
        raise IndexError("arrays used as indices must be of integer (or boolean) type")
    return idx


def insert(arr, obj, values, axis=None):
    """Like numpy.insert with concrete `obj`; `values` may be traced (cast to arr's dtype)."""
    a = as_operand(arr)
    if axis is None:
        a, axis = ravel(a), 0
    s = _shape(a)
    ax = normalize_axis(axis, len(s))
    n = s[ax]
    idx = _static_positions(obj, n, "insert")
    values = cast(as_operand(values), aval(a).dtype)
    if idx.dtype == bool:
        raise NotImplementedError("tracejit.numpy.insert does not take a boolean obj")
    if idx.ndim == 0:
        i = int(idx)
        if not -n <= i <= n:
            raise IndexError(f"index {i} is out of bounds for axis {ax} with size {n}")
        idx = np.array([i + n if i < 0 else i])
        v = reshape(values, (1,) * (len(s) - len(_shape(values))) + _shape(values)) \
            if len(_shape(values)) < len(s) else values
        v = moveaxis(v, 0, ax) if len(s) else v
        num = _shape(v)[ax] if len(s) else 1
        idx = np.full(num, idx[0])
    else:
        idx = idx.reshape(-1).astype(np.int64)
        bad = (idx < -n) | (idx > n)
        if bad.any():
            raise IndexError(f"index {int(idx[bad][0])} is out of bounds for axis {ax} with "
                             f"size {n}")
        idx = np.where(idx < 0, idx + n, idx)
        num = len(idx)
        v = values
    slot = list(s)
    slot[ax] = num
    v = _broadcast_to(v, tuple(slot))
    # Position of every inserted value in the result (NumPy's stable order), then the
    # result as a gather from [arr, values] along the axis.
    order = np.argsort(idx, kind="stable")
    new_pos = np.empty(num, np.int64)
    new_pos[order] = idx[order] + np.arange(num)
    source = np.empty(n + num, np.int64)
    is_new = np.zeros(n + num, bool)
    is_new[new_pos] = True
    source[new_pos] = n + np.arange(num)
    source[~is_new] = np.arange(n)
    from ._indexing import take
    return take(concatenate([a, v], axis=ax), source, axis=ax)


def delete(arr, obj, axis=None):
    """Like numpy.delete with concrete `obj` (int, slice, sequence of ints or a mask)."""
    a = as_operand(arr)
    if axis is None:
        a, axis = ravel(a), 0
    s = _shape(a)
    ax = normalize_axis(axis, len(s))
    n = s[ax]
    idx = _static_positions(obj, n, "delete")
    keep = np.ones(n, bool)
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise ValueError(f"boolean array argument obj to delete must be one dimensional "
                             f"and match the axis length of {n}")
        keep = ~idx
    else:
        idx = idx.reshape(-1).astype(np.int64)
        bad = (idx < -n) | (idx >= n)
        if bad.any():
            raise IndexError(f"index {int(idx[bad][0])} is out of bounds for axis {ax} with "
                             f"size {n}")
        keep[idx] = False
    from ._indexing import take
    return take(a, np.nonzero(keep)[0], axis=ax)


def rot90(m, k=1, axes=(0, 1)):
    m = as_operand(m)
    nd = len(_shape(m))
    axes = tuple(axes)
    if len(axes) != 2:
        raise ValueError("len(axes) must be 2.")
    a0, a1 = (static_int(x, "axes") for x in axes)
    if a0 == a1 or builtins.abs(a0 - a1) == nd:
        raise ValueError("Axes must be different.")
    if not (-nd <= a0 < nd and -nd <= a1 < nd):
        raise ValueError(f"Axes={axes} out of range for array of ndim={nd}.")
    k = static_int(k, "k") % 4
    if k == 0:
        return m
    if k == 2:
        return flip(flip(m, a0), a1)
    perm = list(range(nd))
    perm[a0 % nd], perm[a1 % nd] = perm[a1 % nd], perm[a0 % nd]
    if k == 1:
        return transpose(flip(m, a1), perm)
    return flip(transpose(m, perm), a1)


def rollaxis(a, axis, start=0):
    a = as_operand(a)
    n = len(_shape(a))
    axis = normalize_axis(axis, n)
    start = static_int(start, "start")
    if not -n <= start < n + 1:
        raise np.exceptions.AxisError(f"'start' arg requires {-n} <= start < {n + 1}, but "
                                      f"{start} was passed in")
    if start < 0:
        start += n
    if axis < start:
        start -= 1
    if axis == start:
        return a
    return moveaxis(a, axis, start)


def block(arrays):
    """Like numpy.block: nested lists of arrays joined along the last axes."""
    def depth(x, where):
        if isinstance(x, tuple):
            raise TypeError(f"{where} is a tuple. Only lists can be used to arrange blocks, "
                            "and np.block does not allow implicit conversion from tuple to "
                            "ndarray.")
        if not isinstance(x, list):
            return 0, [where], [x]
        if not x:
            raise ValueError(f"List at {where} cannot be empty")
        depths, leaves = [], []
        for i, e in enumerate(x):
            d, w, lv = depth(e, f"{where}[{i}]")
            depths.append((d, w[0]))
            leaves += lv
        first = depths[0][0]
        for d, w in depths[1:]:
            if d != first:
                raise ValueError(f"List depths are mismatched. First element was at depth "
                                 f"{first + 1}, but there is an element at depth {d + 1} "
                                 f"({w})")
        return first + 1, [where], leaves

    list_depth, _, leaves = depth(arrays, "arrays")
    leaves = [as_operand(x) for x in leaves]
    nd = builtins.max([list_depth] + [len(_shape(x)) for x in leaves])

    def build(x, level):
        if not isinstance(x, list):
            x = as_operand(x)
            s = _shape(x)
            return reshape(x, (1,) * (nd - len(s)) + tuple(s))
        parts = [build(e, level + 1) for e in x]
        return concatenate(parts, axis=-(list_depth - level))

    return build(arrays, 0)
