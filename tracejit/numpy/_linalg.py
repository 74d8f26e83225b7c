"""Products: dot, matmul, vdot, inner, outer, tensordot and einsum, all on `dot_general`."""

from __future__ import annotations

import string

import numpy as np

from .. import dtypes
from ..errors import ShapeError, user_location
from ..primitives import elementwise as ew
from ..primitives import reductions as rd
from ..primitives import structural as st
from ..primitives.linalg import dot_general
from ._base import as_operand, aval, broadcast_shapes, broadcast_to, cast, result_dtype, shape


def _prepare(a, b):
    a, b = as_operand(a), as_operand(b)
    dtype = result_dtype(a, b)
    if dtype == np.bool_:
        raise NotImplementedError("tracejit does not implement products of boolean arrays")
    return cast(a, dtype), cast(b, dtype)


def _mismatch(name, sa, sb, detail=""):
    return ShapeError(f"{name}: shapes {tuple(sa)} and {tuple(sb)} not aligned{detail} at "
                      f"{user_location()}")


def matmul(x1, x2, /):
    a, b = _prepare(x1, x2)
    sa, sb = shape(a), shape(b)
    if len(sa) == 0 or len(sb) == 0:
        raise ValueError("matmul: Input operand does not have enough dimensions (use * for "
                         "scalars)")
    if sa[-1] != sb[-2 if len(sb) > 1 else 0]:
        raise _mismatch("matmul", sa, sb, f": {sa[-1]} (dim {len(sa) - 1}) != "
                        f"{sb[-2 if len(sb) > 1 else 0]} (dim {max(len(sb) - 2, 0)})")
    if len(sa) == 1 and len(sb) == 1:
        return dot_general(a, b, ((0,), (0,)))
    if len(sb) == 1:
        return dot_general(a, b, ((len(sa) - 1,), (0,)))
    if len(sa) == 1:
        # (k,) @ (..., k, m): contract with the second-to-last axis, keep the batch axes.
        out = dot_general(a, b, ((0,), (len(sb) - 2,)))
        return out
    try:
        batch = broadcast_shapes(sa[:-2], sb[:-2])
    except ShapeError:
        raise _mismatch("matmul", sa, sb, f": batch dims {tuple(sa[:-2])} and "
                        f"{tuple(sb[:-2])} do not broadcast") from None
    a = broadcast_to(a, batch + tuple(sa[-2:]))
    b = broadcast_to(b, batch + tuple(sb[-2:]))
    nb = len(batch)
    return dot_general(a, b, ((nb + 1,), (nb,)), (tuple(range(nb)), tuple(range(nb))))


def dot(a, b, out=None):
    if out is not None:
        raise NotImplementedError("tracejit.numpy.dot does not support out=")
    a, b = _prepare(a, b)
    sa, sb = shape(a), shape(b)
    if len(sa) == 0 or len(sb) == 0:
        from ._ufuncs import multiply
        return multiply(a, b)
    cb = 0 if len(sb) == 1 else len(sb) - 2
    if sa[-1] != sb[cb]:
        raise _mismatch("dot", sa, sb, f": {sa[-1]} (dim {len(sa) - 1}) != {sb[cb]} "
                        f"(dim {cb})")
    return dot_general(a, b, ((len(sa) - 1,), (cb,)))


def vdot(a, b, /):
    a, b = _prepare(a, b)
    fa, fb = st.reshape(a, (int(np.prod(shape(a))),)), st.reshape(b, (int(np.prod(shape(b))),))
    if shape(fa) != shape(fb):
        raise _mismatch("vdot", shape(a), shape(b))
    if dtypes.is_complex(aval(fa).dtype):  # NumPy conjugates the first operand
        fa = ew.conj(fa)
    return dot_general(fa, fb, ((0,), (0,)))


def inner(a, b, /):
    a, b = _prepare(a, b)
    sa, sb = shape(a), shape(b)
    if len(sa) == 0 or len(sb) == 0:
        from ._ufuncs import multiply
        return multiply(a, b)
    if sa[-1] != sb[-1]:
        raise _mismatch("inner", sa, sb)
    return dot_general(a, b, ((len(sa) - 1,), (len(sb) - 1,)))


def outer(a, b, out=None):
    if out is not None:
        raise NotImplementedError("tracejit.numpy.outer does not support out=")
    a, b = _prepare(a, b)
    fa = st.reshape(a, (int(np.prod(shape(a))), 1))
    fb = st.reshape(b, (1, int(np.prod(shape(b)))))
    n, m = shape(fa)[0], shape(fb)[1]
    return ew.mul(st.broadcast_in_dim(fa, (n, m), (0, 1)), st.broadcast_in_dim(fb, (n, m),
                                                                               (0, 1)))


def tensordot(a, b, axes=2):
    a, b = _prepare(a, b)
    sa, sb = shape(a), shape(b)
    if isinstance(axes, (int, np.integer)):
        n = int(axes)
        if n < 0 or n > len(sa) or n > len(sb):
            raise ValueError(f"tensordot: axes={n} is out of range for shapes {sa} and {sb}")
        ca, cb = tuple(range(len(sa) - n, len(sa))), tuple(range(n))
    else:
        ax_a, ax_b = axes
        ax_a = (ax_a,) if isinstance(ax_a, (int, np.integer)) else tuple(ax_a)
        ax_b = (ax_b,) if isinstance(ax_b, (int, np.integer)) else tuple(ax_b)
        if len(ax_a) != len(ax_b):
            raise ValueError("tensordot: the axes lists must have the same length")
        ca = tuple(int(x) % len(sa) for x in ax_a)
        cb = tuple(int(x) % len(sb) for x in ax_b)
    for i, j in zip(ca, cb):
        if sa[i] != sb[j]:
            raise _mismatch("tensordot", sa, sb, f": axis {i} ({sa[i]}) != axis {j} ({sb[j]})")
    return dot_general(a, b, (ca, cb))


# -- einsum ----------------------------------------------------------------------------------

def _sublists_to_string(first, rest):
    """The interleaved form einsum(op0, sub0, op1, sub1, ..., [sub_out]): sublists of ints
    (and Ellipsis) become a subscript string."""
    args = [first, *rest]
    ops, subs, out = args[0::2], args[1::2], None
    if len(args) % 2 == 1:
        ops, subs, out = args[0:-1:2], args[1:-1:2], args[-1]

    def letters(sub):
        text = ""
        for s in sub:
            if s is Ellipsis:
                text += "..."
            elif isinstance(s, (int, np.integer)) and 0 <= int(s) < 52:
                text += string.ascii_letters[int(s)]
            else:
                raise ValueError("subscript is not within the valid range [0, 52)")
        return text

    spec = ",".join(letters(s) for s in subs)
    if out is not None:
        spec += "->" + letters(out)
    return spec, ops


def _expand_ellipsis(subscripts: str, ops):
    """Replace '...' by letters the subscripts do not use, broadcasting every operand's
    ellipsis dimensions to one shape (NumPy broadcasts them)."""
    spec = subscripts.replace(" ", "")
    ins, arrow, out = spec.partition("->")
    terms = ins.split(",")
    if len(terms) != len(ops):
        raise ValueError(f"einsum: {len(terms)} subscript terms for {len(ops)} operands")
    free = [c for c in string.ascii_letters if c not in spec]
    ell_shapes = []
    for t, o in zip(terms, ops):
        if t.count("...") > 1 or t.replace("...", "").count(".") or \
                (t.count(".") and "..." not in t):
            raise ValueError(f"einsum: invalid ellipsis in {t!r}")
        n_ell = len(shape(o)) - len(t.replace("...", "")) if "..." in t else 0
        if n_ell < 0:
            raise ValueError(f"einsum: operand of shape {shape(o)} has fewer dimensions than "
                             f"subscript {t!r}")
        i = t.find("...")
        ell_shapes.append(tuple(shape(o)[i:i + n_ell]) if n_ell else ())
    target = broadcast_shapes(*ell_shapes)
    n = len(target)
    ell = "".join(free[:n])
    new_terms, new_ops = [], []
    for t, o, es in zip(terms, ops, ell_shapes):
        if "..." not in t:
            new_terms.append(t)
            new_ops.append(o)
            continue
        i = t.find("...")
        s = tuple(shape(o))
        k = len(es)
        # Broadcast this operand's ellipsis part to `target` (right-aligned).
        o = st.reshape(o, s[:i] + (1,) * (n - k) + s[i:])
        full = s[:i] + target + s[i + k:]
        o = broadcast_to(o, full)
        new_terms.append(t.replace("...", ell))
        new_ops.append(o)
    if arrow:
        if out.count("...") > 1 or out.replace("...", "").count("."):
            raise ValueError(f"einsum: invalid ellipsis in output {out!r}")
        out = out.replace("...", ell)
    else:
        letters = "".join(new_terms).replace(",", "")
        named = "".join(c for c in letters if c not in ell)
        out = ell + "".join(sorted(c for c in set(named) if named.count(c) == 1))
    return ",".join(new_terms) + "->" + out, new_ops


def _parse_einsum(subscripts: str, n_ops: int):
    spec = subscripts.replace(" ", "")
    if "->" in spec:
        ins, out = spec.split("->")
    else:
        ins = spec
        letters = ins.replace(",", "")
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    terms = ins.split(",")
    if len(terms) != n_ops:
        raise ValueError(f"einsum: {len(terms)} subscript terms for {n_ops} operands")
    for c in out:
        if out.count(c) > 1 or c not in ins:
            raise ValueError(f"einsum: bad output subscript {c!r} in {subscripts!r}")
    return terms, out


def _take_diagonals(x, term: str):
    """Collapse repeated letters within one operand ('ii' -> the diagonal 'i')."""
    while len(set(term)) != len(term):
        c = next(ch for ch in term if term.count(ch) > 1)
        i = term.index(c)
        j = term.index(c, i + 1)
        from ._shape import diagonal
        x = diagonal(x, 0, i, j)  # removes axes i, j, appends the diagonal
        term = "".join(ch for k, ch in enumerate(term) if k not in (i, j)) + c
    return x, term


def _sum_letters(x, term: str, keep: set):
    axes = tuple(i for i, c in enumerate(term) if c not in keep)
    if not axes:
        return x, term
    return rd.reduce_sum(x, axes), "".join(c for c in term if c in keep)


def _to_order(x, term: str, out: str):
    return st.transpose(x, [term.index(c) for c in out])


def einsum(subscripts, *operands, optimize=False, out=None, dtype=None):
    """Einstein summation for explicit or implicit subscripts (one or more operands,
    contracted left to right)."""
    if out is not None:
        raise NotImplementedError("tracejit.numpy.einsum does not support out=")
    if not isinstance(subscripts, str):
        subscripts, operands = _sublists_to_string(subscripts, operands)
    ops = [as_operand(o) for o in operands]
    if "." in subscripts:
        subscripts, ops = _expand_ellipsis(subscripts, ops)
    dt = np.dtype(dtype) if dtype is not None else result_dtype(*ops)
    ops = [cast(o, dt) for o in ops]
    terms, out_spec = _parse_einsum(subscripts, len(ops))
    for o, t in zip(ops, terms):
        if len(shape(o)) != len(t):
            raise ValueError(f"einsum: operand of shape {shape(o)} does not match subscript "
                             f"{t!r}")
    sizes = {}
    for o, t in zip(ops, terms):
        for c, d in zip(t, shape(o)):
            if sizes.setdefault(c, d) != d:
                raise ShapeError(f"einsum: dimension {c!r} has sizes {sizes[c]} and {d} "
                                 f"(operand shapes {', '.join(str(tuple(shape(x))) for x in ops)})"
                                 f" at {user_location()}")
    x, term = ops[0], terms[0]
    x, term = _take_diagonals(x, term)
    for k in range(1, len(ops)):
        y, yterm = _take_diagonals(ops[k], terms[k])
        later = set(out_spec) | set("".join(terms[k + 1:]))
        x, term = _sum_letters(x, term, later | set(yterm))
        y, yterm = _sum_letters(y, yterm, later | set(term))
        shared = [c for c in term if c in yterm]
        batch = [c for c in shared if c in later]
        contract = [c for c in shared if c not in later]
        x = dot_general(x, y, (tuple(term.index(c) for c in contract),
                               tuple(yterm.index(c) for c in contract)),
                        (tuple(term.index(c) for c in batch),
                         tuple(yterm.index(c) for c in batch)))
        term = ("".join(batch) + "".join(c for c in term if c not in shared)
                + "".join(c for c in yterm if c not in shared))
    x, term = _sum_letters(x, term, set(out_spec))
    return _to_order(x, term, out_spec)
