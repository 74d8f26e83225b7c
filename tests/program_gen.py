"""Random tracejit programs, checked under every transform stack.

A generated program is Python source written against `tracejit.numpy`, `tracejit.nn` and the
control-flow API (`tj.cond`, `tj.switch`, `tj.scan`, `tj.fori_loop`, `tj.while_loop`,
`tj.checkpoint`), with a few primitives bound directly where no front-end function reaches a
form (`iota`, reverse cumulative ops, `cumlinrec`, interior padding, raw `dot_general`,
clamped `gather`/`scatter_add`). It returns a dict of many independent outputs, so one compile
exercises many primitives; `loss` is a randomly weighted sum of its float outputs. Every
value carries an interval bound, so operands are kept inside each function's domain (log of
positives, arcsin inside (-1, 1), ...) and finite differences stay meaningful.

Checks per program (see `check_program`):

- `jit(f)` against the interpreter (`tj.disable_jit()`) and both against eager NumPy
  evaluation: 1e-12 relative in float64, 2e-5 in float32 (the absolute floor is relative to
  the value's interval bound, so cancellation does not fail), ints and bools exact, same
  dtypes and shapes, NaN and inf in the same places;
- `grad` and `grad(jit(loss))` against central finite differences along random directions;
- `jit(grad)` / `jit(value_and_grad)` against the interpreted gradient;
- `jvp` against finite differences, `vjp` against `jvp` (<u, J v> = <J^T u, v>),
  `jit(jvp)` against `jvp`;
- on small programs, `hessian` (and `jit(hessian)`) against finite differences of the
  gradient.

The primitives every generated IR contains (nested bodies and the IRs made by jvp, linearize
and transpose included) are recorded, so a test can fail when one is never reached.

Long run (prints each failure as a runnable snippet, reduced to the outputs that fail):

    python tests/program_gen.py --programs 2000 --seed 7

Options: `--only N` reruns program N of a run, `--small 0.2` the share of small (hessian)
programs, `--minutes M` stops after M minutes, `--show` prints every program's source.
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import re
import sys
import textwrap
import time
import traceback
import zlib
from dataclasses import dataclass, field

import numpy as np
import scipy.special as _sps

import tracejit as tj
import tracejit.scipy.special  # noqa: F401  (registers the special-function primitives)
from tracejit.core import Primitive
from tracejit.errors import ConcretizationError

INF = math.inf
F64, F32 = np.dtype("float64"), np.dtype("float32")
INT_DTYPES = [np.dtype(d) for d in ("int64", "int32", "int16", "int8", "uint8")]
ALL_DTYPES = [F64, F32, *INT_DTYPES, np.dtype(bool)]

# Every program starts with this prelude: imports and the helpers its source calls.
PRELUDE = '''\
import numpy as np
import tracejit as tj
import tracejit.nn as nn
import tracejit.numpy as tnp
import tracejit.scipy.special as tss
from tracejit.core import bind_into, current_builder
from tracejit.primitives import elementwise as ew
from tracejit.primitives import indexing as ix
from tracejit.primitives import linalg as la
from tracejit.primitives import reductions as rd
from tracejit.primitives import structural as st


def iota(dtype, shape, dimension):
    """The `iota` primitive, recorded into the current trace (no front-end function binds
    it; outside a trace it is computed)."""
    return bind_into(current_builder(), st.iota_p, [], {"dtype": np.dtype(dtype),
                     "shape": tuple(shape), "dimension": dimension})


def arg(seed, shape, dtype, lo, hi, layout="C"):
    """A reproducible input: uniform floats or integers in [lo, hi] (bools: coin flips),
    laid out in memory as `layout` says (C order, transposed, strided or reversed)."""
    r = np.random.default_rng(seed)
    dt, shape = np.dtype(dtype), tuple(shape)
    full = shape[::-1] if layout == "T" else (
        (2 * shape[0],) + shape[1:] if layout == "strided" and shape else shape)
    if dt.kind == "f":
        x = r.uniform(lo, hi, full)
    elif dt.kind == "b":
        x = r.random(full) < 0.5
    else:
        x = r.integers(int(lo), int(hi), full, endpoint=True)
    x = np.asarray(x).astype(dt)
    if layout == "T":
        return x.T
    if layout == "strided" and shape:
        return x[::2]
    if layout == "reversed" and shape:
        return x[::-1]
    return x


def weight(seed, shape):
    """Random loss weights (random cotangents: all-ones would hide transposition bugs)."""
    return np.random.default_rng(seed).uniform(-1.5, 1.5, tuple(shape))
'''


def _base_namespace() -> dict:
    ns: dict = {}
    exec(compile(PRELUDE, "<prelude>", "exec"), ns)
    return ns


BASE_NS = _base_namespace()


class GenError(Exception):
    """The generator wrote a statement that eager evaluation rejects."""


# =============================================================================================
# Values, statements, inputs
# =============================================================================================

@dataclass
class Val:
    """A value of the program being generated: its Python name, type, and a bound on its
    entries (for floats and ints) that holds for every loop step and FD perturbation."""

    name: str
    shape: tuple
    dtype: np.dtype
    lo: float
    hi: float
    fd_ok: bool = True   # derivative by design equals the finite-difference one
    finite: bool = True  # no NaN/inf anywhere
    depth: int = 0       # 0: top level (a NumPy array when f runs eagerly); else traced
    py: bool = False     # a Python scalar argument (no array methods)
    lowp: bool = False   # float32 somewhere in what it is computed from
    jumpy: bool = False  # piecewise constant somewhere (floor, comparisons, ...): FD with a
                         # large (float32) step straddles jumps

    @property
    def kind(self) -> str:
        if self.dtype == np.float16:  # NumPy's float result of int8/uint8: not generated on
            return "h"
        return self.dtype.kind if self.dtype.kind != "u" else "i"

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def mag(self) -> float:
        return max(abs(self.lo), abs(self.hi))

    def within(self, lo, hi) -> bool:
        return self.finite and lo < self.lo and self.hi < hi


@dataclass
class Stmt:
    """One top-level or body statement (a compound one holds a def and its call)."""

    lines: list
    defines: list
    uses: set


@dataclass
class Input:
    name: str
    shape: tuple
    dtype: np.dtype
    lo: float
    hi: float
    form: str = "array"  # array | py (Python scalar) | np (NumPy scalar)
    layout: str = "C"
    seed: int = 0

    def expr(self) -> str:
        call = (f"arg({self.seed}, {self.shape!r}, {self.dtype.name!r}, {self.lo!r}, "
                f"{self.hi!r}" + (f", {self.layout!r})" if self.layout != "C" else ")"))
        if self.form == "py":
            return f"{'float' if self.dtype.kind == 'f' else 'int'}({call})"
        if self.form == "np":
            return f"{call}[()]"
        return call

    @property
    def differentiable(self) -> bool:
        return self.dtype.kind == "f"


def _fmt(x: float) -> str:
    """A Python literal for a float (exact round trip)."""
    return repr(float(x))


def _broadcastable(src: tuple, dst: tuple) -> bool:
    if len(src) > len(dst):
        return False
    return all(a in (1, b) for a, b in zip(src[::-1], dst[::-1]))


def _bshape(a: tuple, b: tuple):
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        return None


def _iv_mul(a, b):
    with np.errstate(all="ignore"):
        ps = [x * y for x in a for y in b]
    ps = [0.0 if math.isnan(p) else p for p in ps]
    return min(ps), max(ps)


def _iv_mono(fn, lo, hi):
    with np.errstate(all="ignore"):
        a, b = float(fn(lo)), float(fn(hi))
    return min(a, b), max(a, b)


def _int_range(dt) -> tuple:
    info = np.iinfo(dt)
    return float(info.min), float(info.max)


def _clip_int(dt, lo, hi):
    """Integer bounds; a bound past the dtype's range means the value may wrap around."""
    if dt.kind == "b":
        return 0.0, 1.0
    a, b = _int_range(dt)
    if lo < a or hi > b:
        return a, b
    return lo, hi


# =============================================================================================
# Scopes: the top-level function and control-flow bodies
# =============================================================================================

MAX_DEPTH = 2
BUDGET = 40  # weighted statements per (big) program
SWEEP = 30   # adaptive runs: wanted primitives few enough to aim an op at each


class Scope:
    """Statements and values of one function body. `ns` holds concrete values of every
    visible name: each statement is evaluated eagerly as it is written, so the generator
    knows real shapes and dtypes."""

    def __init__(self, gen: Gen, parent: Scope | None, ns: dict, depth: int, params=()):
        self.gen, self.parent, self.ns, self.depth = gen, parent, ns, depth
        self.stmts: list[Stmt] = []
        self.vals: list[Val] = list(params)
        self.params = [p.name for p in params]
        self.extra_uses: set[str] = set()  # names read by a body's return expressions
        self.any_lowp = False    # this scope computed something in float32
        self.child_lowp = False  # a body closed since the last block did
        self.any_jumpy = False   # the same for jumps
        self.child_jumpy = False

    # -- values ---------------------------------------------------------------------------

    def visible(self) -> list[Val]:
        out, s = [], self
        while s is not None:
            out = s.vals + out
            s = s.parent
        return out

    def pick(self, pred=lambda v: True, recent: float = 0.5) -> Val | None:
        """A visible value satisfying `pred`, preferring recent ones (deeper chains)."""
        cands = [v for v in self.visible() if pred(v)]
        if not cands:
            return None
        r = self.gen.r
        if r.random() < recent:
            return cands[-1 - min(int(r.expovariate(0.7)), len(cands) - 1)]
        return r.choice(cands)

    def emit(self, expr: str, lo: float, hi: float, uses, fd_ok=True, finite=True,
             jumpy=False) -> Val:
        name = self.gen.fresh("v")
        value = self.evaluate(expr)
        self.ns[name] = value
        arr = np.asarray(value)
        uses = {u.name if isinstance(u, Val) else u for u in uses}
        fd_ok = fd_ok and all(self.lookup(u).fd_ok for u in uses if self.lookup(u))
        finite = finite and all(self.lookup(u).finite for u in uses if self.lookup(u))
        lowp = any(self.lookup(u).lowp for u in uses if self.lookup(u))
        jumpy = jumpy or any(self.lookup(u).jumpy for u in uses if self.lookup(u))
        v = self._val(name, arr, lo, hi, fd_ok, finite, lowp, jumpy)
        self.stmts.append(Stmt([f"{name} = {expr}"], [name], uses))
        self.vals.append(v)
        self.gen.cost += 1 + 1.5 * self.depth
        return v

    def _val(self, name, arr, lo, hi, fd_ok, finite, lowp=False, jumpy=False) -> Val:
        dt = arr.dtype
        lowp = lowp or dt == F32
        self.any_lowp = self.any_lowp or lowp
        self.any_jumpy = self.any_jumpy or jumpy
        if dt.kind in "biu":
            lo, hi = _clip_int(dt, lo, hi)
        if arr.size and dt.kind in "fiu":
            with np.errstate(all="ignore"):
                fin = np.isfinite(arr) if dt.kind == "f" else np.ones(arr.shape, bool)
                if not fin.all():
                    finite = False
                if fin.any():  # a bound the generator got wrong is widened, not trusted
                    lo = min(lo, float(arr[fin].min()))
                    hi = max(hi, float(arr[fin].max()))
        return Val(name, arr.shape, dt, float(lo), float(hi), fd_ok, finite, self.depth,
                   lowp=lowp, jumpy=jumpy)

    def lookup(self, name: str) -> Val | None:
        for v in reversed(self.visible()):
            if v.name == name:
                return v
        return None

    def evaluate(self, expr: str):
        try:
            with np.errstate(all="ignore"):
                return eval(expr, self.ns)
        except Exception as e:
            raise GenError(f"eager evaluation of `{expr}` raised {type(e).__name__}: {e}"
                           ) from e

    def run(self, source: str) -> None:
        try:
            with np.errstate(all="ignore"):
                exec(source, self.ns)
        except Exception as e:
            raise GenError(f"eager evaluation raised {type(e).__name__}: {e}\n{source}"
                           ) from e

    # -- operands -------------------------------------------------------------------------

    def float_val(self, pred=lambda v: True, shape=None, new_ok=True) -> Val:
        """A float value (existing, or a new input)."""
        v = self.pick(lambda v: v.kind == "f" and v.finite and pred(v)
                      and (shape is None or v.shape == shape))
        if v is None and new_ok:
            v = self.gen.new_input(self.gen.shape() if shape is None else shape,
                                   self.gen.float_dtype(), -2.0, 2.0)
        return v

    def in_domain(self, v: Val, lo: float, hi: float) -> Val:
        """`v` itself if its bound lies inside (lo, hi), else a smooth map of it into there."""
        if v.within(lo, hi):
            return v
        r = self.gen.r
        x = v
        if x.mag > 30 or not x.finite:
            x = self.squash(x, 3.0)
        if lo == -INF and hi == INF:
            return x
        if lo == -INF or hi == INF:
            if hi == INF:
                a = lo + 0.15
                form = r.choice(["{a} + tnp.exp(tnp.tanh({x}))", "{a} + {x} * {x}",
                                 "{a} + tnp.abs({x})", "{a} + nn.softplus({x})",
                                 "{a} + tnp.square(tnp.sin({x}))", "{a} + tnp.cosh({x})"])
                if form.startswith("{a} + tnp.cosh") and x.mag > 10:
                    form = "{a} + nn.softplus({x})"
                expr = form.format(a=_fmt(a), x=x.name)
                lo2, hi2 = a, a + max(3.0, x.mag ** 2 + 1, math.exp(min(x.mag, 30)))
            else:
                b = hi - 0.15
                form = r.choice(["{b} - tnp.exp(tnp.tanh({x}))", "{b} - {x} * {x}",
                                 "{b} - nn.softplus({x})"])
                expr = form.format(b=_fmt(b), x=x.name)
                lo2, hi2 = b - max(3.0, x.mag ** 2 + 1, math.exp(min(x.mag, 30))), b
            return self.emit(expr, lo2, hi2, [x])
        c, h = (lo + hi) / 2, (hi - lo) / 2 * 0.9
        form = r.choice(["{c} + {h} * tnp.tanh({x})", "{c} + {h} * tnp.sin({x})",
                         "{c} + {h} * (2.0 * nn.sigmoid({x}) - 1.0)", "{c} + {h} * tnp.cos({x})",
                         "{c} + {h} * tnp.arctan({x}) / (0.5 * np.pi)"])
        expr = form.format(c=_fmt(c), h=_fmt(h), x=x.name)
        return self.emit(expr, c - h, c + h, [x])

    def squash(self, v: Val, bound: float) -> Val:
        """A smooth bounded function of `v` (for operands of exp, products, ...)."""
        if v.finite and v.mag <= bound:
            return v
        r = self.gen.r
        s = 1.0 / max(v.mag, 1.0) if math.isfinite(v.mag) else 1.0
        form = r.choice(["{b} * tnp.tanh({x} * {s})", "{b} * tnp.sin({x} * {s})",
                         "{b} * (nn.sigmoid({x}) - 0.5)", "{b} * tnp.arctan({x}) / np.pi",
                         "{b} * {x} / (1.0 + tnp.abs({x}))"])
        if not v.finite:  # NaN-safe: replaced by a constant where not finite
            expr = (f"tnp.where(tnp.isfinite({v.name}), {_fmt(bound)} * tnp.tanh("
                    f"tnp.where(tnp.isfinite({v.name}), {v.name}, 0.0) * {_fmt(s)}), 0.0)")
            return self.emit(expr, -bound, bound, [v], fd_ok=False, finite=True)
        expr = form.format(b=_fmt(bound), x=v.name, s=_fmt(s))
        return self.emit(expr, -bound, bound, [v])

    def int_val(self, lo: int, hi: int, shape=None, dtype=None) -> Val:
        """An integer value with entries in [lo, hi] (existing, or a new input)."""
        v = self.pick(lambda v: v.kind == "i" and lo <= v.lo and v.hi <= hi
                      and (shape is None or v.shape == shape)
                      and (dtype is None or v.dtype == dtype), recent=0.3)
        if v is None:
            dt = dtype or self.gen.r.choice(INT_DTYPES)
            if dt.kind == "u":
                lo = max(lo, 0)
            v = self.gen.new_input(self.gen.shape() if shape is None else shape, dt, lo, hi)
        return v

    def bool_val(self, shape=None) -> Val:
        v = self.pick(lambda v: v.kind == "b" and (shape is None or v.shape == shape))
        if v is None:
            v = self.gen.new_input(self.gen.shape() if shape is None else shape,
                                   np.dtype(bool), 0, 1)
        return v

    def partner(self, v: Val, kinds="f") -> Val:
        """A second operand broadcast-compatible with `v` (existing value, 0-d value, or a
        new input of a compatible shape)."""
        r = self.gen.r
        cand = self.pick(lambda w: w.kind in kinds and w.name != v.name and w.finite
                         and _bshape(v.shape, w.shape) is not None
                         and len(_bshape(v.shape, w.shape)) <= 4
                         and np.prod(_bshape(v.shape, w.shape)) <= 200)
        if cand is not None and r.random() < 0.7:
            return cand
        shape = list(v.shape)
        if shape and r.random() < 0.5:
            shape[r.randrange(len(shape))] = 1
        if shape and r.random() < 0.3:
            shape = shape[r.randrange(len(shape) + 1):]
        if len(shape) == len(v.shape) and len(shape) < 3 and r.random() < 0.15:
            shape = [r.choice([1, 2])] + shape
        kind = r.choice(kinds)
        if kind == "f":
            dt = v.dtype if v.kind == "f" and r.random() < 0.8 else self.gen.float_dtype()
            return self.gen.new_input(tuple(shape), dt, -2.0, 2.0)
        if kind == "b":
            return self.gen.new_input(tuple(shape), np.dtype(bool), 0, 1)
        dt = v.dtype if v.kind == "i" and r.random() < 0.7 else r.choice(INT_DTYPES)
        return self.gen.new_input(tuple(shape), dt, 0 if dt.kind == "u" else -5, 5)

    def child(self, params_spec) -> tuple[Scope, list[Val]]:
        """A body scope whose parameters are given as (value, lo, hi) triples: the concrete
        representative and the bound that holds on every step."""
        ns = dict(self.ns)
        params = []
        for rep, lo, hi in params_spec:
            name = self.gen.fresh("p")
            ns[name] = rep
            arr = np.asarray(rep)
            params.append(Val(name, arr.shape, arr.dtype, float(lo), float(hi),
                              depth=self.depth + 1, lowp=arr.dtype == F32))
        sc = Scope(self.gen, self, ns, self.depth + 1, params)
        self.gen.active.append(sc)
        return sc, params

    def close(self) -> None:
        self.gen.active.remove(self)
        self.parent.child_lowp = self.parent.child_lowp or self.child_lowp or self.any_lowp
        self.parent.child_jumpy = self.parent.child_jumpy or self.child_jumpy or self.any_jumpy

    def fit(self, v: Val, shape: tuple, dtype: np.dtype) -> tuple[str, float, float]:
        """An expression of `v` with exactly `shape` and `dtype` (broadcast, or reduced then
        broadcast; converted), and its bound."""
        e, lo, hi = v.name, v.lo, v.hi
        self.extra_uses.add(v.name)
        reduced = False
        if v.kind == "b" and dtype.kind != "b":
            e, lo, hi = f"tnp.astype({e}, np.float64)", 0.0, 1.0
        if v.shape != shape:
            if not _broadcastable(v.shape, shape):
                if v.size == 0:
                    e, lo, hi = f"tnp.sum({e})", 0.0, 0.0
                else:
                    e = f"tnp.mean({e})" if dtype.kind == "f" else f"tnp.max({e})"
                reduced = True
            e = f"tnp.broadcast_to({e}, {shape!r})"
        if dtype.kind == "b" and v.kind != "b":
            e, lo, hi = f"({e} > 0)", 0.0, 1.0
        elif np.dtype(v.dtype) != dtype or v.kind == "b" or reduced:
            if dtype.kind in "iu" and v.kind == "f":
                e = f"tnp.astype(tnp.clip({e}, -50, 50), np.{dtype.name})"
                lo, hi = max(lo, -50), min(hi, 50)
            else:
                e = f"tnp.astype({e}, np.{dtype.name})"
        return e, lo, hi


# =============================================================================================
# The generator
# =============================================================================================

@dataclass
class Op:
    name: str
    fn: object
    weight: float
    prims: frozenset
    top_only: bool = False


OPS: list[Op] = []


def op(weight: float, prims=(), top_only=False):
    def deco(fn):
        OPS.append(Op(fn.__name__.removeprefix("op_"), fn, weight, frozenset(prims), top_only))
        return fn
    return deco


class Gen:
    """Builds one program. `want`: primitive names not yet covered by the run, whose ops
    are preferred."""

    def __init__(self, seed: int, small: bool = False, want=frozenset()):
        self.seed = seed
        self.r = random.Random(seed)
        self.small = small
        self.want = set(want)
        self.inputs: list[Input] = []
        self._count = itertools.count()
        self.flags: set[str] = set()
        r = self.r
        self.fdt = F32 if r.random() < 0.3 else F64
        self.dims = [r.choice([1, 2, 3]) for _ in range(2)] if small else \
            [r.choice([1, 2, 3, 4, 5]) for _ in range(3)]
        self.zero_dims = not small and r.random() < 0.15
        self.cost = 0.0  # statements written, weighted by nesting depth
        self.focus = None  # the primitive an op should produce (sweeps)
        self.budget_cap = 20 if small else BUDGET + 15
        self.top = Scope(self, None, dict(BASE_NS), 0)
        self.active = [self.top]
        self.outputs: list[Val] = []

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{next(self._count)}"

    def float_dtype(self) -> np.dtype:
        return self.fdt if self.r.random() < 0.85 else (F64 if self.fdt == F32 else F32)

    def shape(self, ndim=None) -> tuple:
        r = self.r
        if ndim is None:
            ndim = r.choice([0, 1, 1, 2, 2, 2, 3]) if not self.small else r.choice([0, 1, 1])
        dims = self.dims + ([0] if self.zero_dims else [])
        return tuple(r.choice(dims) for _ in range(ndim))

    def new_input(self, shape, dtype, lo, hi, form=None, layout=None) -> Val:
        """A new argument of the program (Python or NumPy scalar, or an array in some memory
        layout, unless `form`/`layout` say)."""
        r = self.r
        dtype = np.dtype(dtype)
        name = self.fresh("x" if dtype.kind == "f" else ("m" if dtype.kind == "b" else "i"))
        # (a negative Python int meeting an unsigned array is an error in NumPy)
        py_ok = dtype == F64 or dtype == np.dtype("int64") and lo >= 0
        if form is not None:
            pass
        elif shape == () and py_ok and r.random() < 0.4:
            form = "py" if r.random() < 0.5 else "np"
        elif shape == () and r.random() < 0.3:
            form = "np"
        elif layout is None and len(shape) >= 1 and r.random() < 0.35:
            layout = r.choice(["T", "strided", "reversed"]) if len(shape) >= 2 else \
                r.choice(["strided", "reversed"])
        form, layout = form or "array", layout or "C"
        if dtype.kind == "u":
            lo = max(lo, 0)
        spec = Input(name, tuple(shape), dtype, float(lo), float(hi), form, layout,
                     r.randrange(1 << 30))
        self.inputs.append(spec)
        value = eval(spec.expr(), BASE_NS)
        for sc in self.active:
            sc.ns[name] = value
        arr = np.asarray(value)
        v = Val(name, arr.shape, arr.dtype, float(lo), float(hi), py=form == "py",
                lowp=arr.dtype == F32)
        self.top.vals.append(v)
        return v

    def choose_op(self, sc: Scope) -> Op:
        ops = [o for o in OPS if not (o.top_only and sc.depth)]
        if sc.depth >= MAX_DEPTH:
            ops = [o for o in ops if "control" not in o.prims]
        # with primitives still wanted, ops that reach none of them are rare
        weights = [o.weight * (0.15 + min(len(o.prims & self.want), 3)) if self.want
                   else o.weight for o in ops]
        return self.r.choices(ops, weights)[0]

    def sweep(self) -> None:
        """One op aimed at each primitive still wanted (adaptive runs, near the end)."""
        for prim in sorted(self.want):
            ops = [o for o in OPS if prim in o.prims]
            if not ops:
                continue
            self.focus = prim
            self.r.choices(ops, [o.weight for o in ops])[0].fn(self.top)
            self.focus = None

    def run_ops(self, sc: Scope, n: int) -> None:
        for _ in range(n):
            if sc.depth and self.cost >= self.budget_cap:
                return
            o = self.choose_op(sc)
            o.fn(sc)

    def build(self) -> Program:
        r = self.r
        top = self.top
        for _ in range(2 if self.small else 3):
            self.new_input(self.shape(), self.fdt, -2.0, 2.0)
        # Compile time grows with the generated code, and a body's code is repeated by
        # reverse mode (known, linear and transposed copies): statements in bodies cost more.
        budget = r.randint(8, 14) if self.small else r.randint(BUDGET - 10, BUDGET)
        if self.want and len(self.want) <= SWEEP:
            self.sweep()
        while self.cost < budget:
            self.run_ops(top, 1)
        outs = [v for v in top.vals if v.name not in {i.name for i in self.inputs}]
        return Program(self.seed, self.inputs, top.stmts, outs, self.fdt, self.flags,
                       self.small)


def choose(gen: Gen, options: list, focus: dict | None = None):
    """A random option, or the one `focus` maps the primitive being swept to."""
    if focus and gen.focus in focus:
        gen.r.random()  # (the same draws as without a focus)
        return focus[gen.focus]
    return gen.r.choice(options)


def pick_prim_row(gen: Gen, rows):
    """Choose a row of an op table, preferring rows whose primitive is still wanted (only
    rows of the primitive being swept, if any)."""
    focused = [row for row in rows if row[1] == gen.focus]
    if focused:
        return gen.r.choice(focused)
    weights = [row[-1] * (0.2 + 3 * (row[1] in gen.want)) if gen.want else row[-1]
               for row in rows]
    return gen.r.choices(rows, weights)[0]


# =============================================================================================
# Elementwise ops
# =============================================================================================

def _exp(x):
    return math.exp(min(x, 700.0))


# name, primitive, template, domain, bound of the result (lo, hi) -> (lo, hi), weight
UNARY = [
    ("exp", "exp", "tnp.exp({x})", (-INF, 8), lambda a, b: (_exp(a), _exp(b)), 1),
    ("expm1", "expm1", "tnp.expm1({x})", (-INF, 8),
     lambda a, b: (math.expm1(max(a, -700)), math.expm1(b)), 1),
    ("exp2", "exp2", "tnp.exp2({x})", (-INF, 10), lambda a, b: (2.0 ** max(a, -1000), 2.0 ** b),
     1),
    ("log", "log", "tnp.log({x})", (0.05, INF), lambda a, b: _iv_mono(np.log, a, b), 1),
    ("log1p", "log1p", "tnp.log1p({x})", (-0.9, INF), lambda a, b: _iv_mono(np.log1p, a, b), 1),
    ("log2", "log2", "tnp.log2({x})", (0.05, INF), lambda a, b: _iv_mono(np.log2, a, b), 1),
    ("log10", "log10", "np.log10({x})", (0.05, INF), lambda a, b: _iv_mono(np.log10, a, b), 1),
    ("sqrt", "sqrt", "tnp.sqrt({x})", (0.05, INF), lambda a, b: _iv_mono(np.sqrt, a, b), 1),
    ("cbrt", "cbrt", "tnp.cbrt({x})", (0.05, INF), lambda a, b: _iv_mono(np.cbrt, a, b), 1),
    ("sin", "sin", "tnp.sin({x})", (-200, 200), lambda a, b: (-1.0, 1.0), 1),
    ("cos", "cos", "np.cos({x})", (-200, 200), lambda a, b: (-1.0, 1.0), 1),
    ("tan", "tan", "tnp.tan({x})", (-1.3, 1.3), lambda a, b: _iv_mono(np.tan, a, b), 1),
    ("arcsin", "asin", "tnp.arcsin({x})", (-0.95, 0.95),
     lambda a, b: _iv_mono(np.arcsin, a, b), 1),
    ("arccos", "acos", "tnp.arccos({x})", (-0.95, 0.95),
     lambda a, b: _iv_mono(np.arccos, a, b), 1),
    ("arctan", "atan", "tnp.arctan({x})", (-INF, INF), lambda a, b: (-1.6, 1.6), 1),
    ("sinh", "sinh", "tnp.sinh({x})", (-8, 8), lambda a, b: _iv_mono(np.sinh, a, b), 1),
    ("cosh", "cosh", "tnp.cosh({x})", (-8, 8), lambda a, b: (1.0, math.cosh(max(-a, b))), 1),
    ("tanh", "tanh", "tnp.tanh({x})", (-INF, INF), lambda a, b: (-1.0, 1.0), 1),
    ("arcsinh", "asinh", "tnp.arcsinh({x})", (-INF, INF),
     lambda a, b: _iv_mono(np.arcsinh, a, b), 1),
    ("arccosh", "acosh", "tnp.arccosh({x})", (1.05, INF),
     lambda a, b: _iv_mono(np.arccosh, a, b), 1),
    ("arctanh", "atanh", "tnp.arctanh({x})", (-0.95, 0.95),
     lambda a, b: _iv_mono(np.arctanh, a, b), 1),
    ("sigmoid", "logistic", "nn.sigmoid({x})", (-INF, INF), lambda a, b: (0.0, 1.0), 1),
    ("softplus", "logaddexp", "nn.softplus({x})", (-INF, INF),
     lambda a, b: (0.0, max(b, 0) + 0.7), 0.5),
    ("relu", "select", "nn.relu({x})", (-INF, INF), lambda a, b: (0.0, max(b, 0.0)), 0.5),
    ("abs", "abs", "tnp.abs({x})", (-INF, INF), lambda a, b: (0.0, max(-a, b)), 0.7),
    ("abs_op", "abs", "abs({x})", (-INF, INF), lambda a, b: (0.0, max(-a, b)), 0.3),
    ("neg", "neg", "-{x}", (-INF, INF), lambda a, b: (-b, -a), 0.5),
    ("square", "integer_pow", "tnp.square({x})", (-INF, INF),
     lambda a, b: (0.0, max(a * a, b * b)), 0.5),
    ("reciprocal", "div", "tnp.reciprocal({x})", (0.1, INF),
     lambda a, b: _iv_mono(lambda t: 1 / t, a, b), 0.5),
    ("sinc", "sin", "tnp.sinc({x})", (-INF, INF), lambda a, b: (-0.3, 1.0), 0.3),
    ("deg2rad", "mul", "tnp.deg2rad({x})", (-INF, INF),
     lambda a, b: (a * math.pi / 180, b * math.pi / 180), 0.2),
    ("fabs", "abs", "tnp.fabs({x})", (-INF, INF), lambda a, b: (0.0, max(-a, b)), 0.2),
    ("erf", "erf", "tss.erf({x})", (-INF, INF), lambda a, b: (-1.0, 1.0), 0.3),
    ("erfc", "erfc", "tss.erfc({x})", (-INF, INF), lambda a, b: (0.0, 2.0), 0.3),
    ("erfinv", "erfinv", "tss.erfinv({x})", (-0.9, 0.9),
     lambda a, b: _iv_mono(_sps.erfinv, a, b), 0.3),
    ("gammaln", "lgamma", "tss.gammaln({x})", (0.2, 30),
     lambda a, b: (-0.13, max(math.lgamma(a), math.lgamma(b))), 0.3),
    ("digamma", "digamma", "tss.digamma({x})", (0.2, 30),
     lambda a, b: _iv_mono(_sps.digamma, a, b), 0.3),
    ("polygamma1", "polygamma", "tss.polygamma(1, {x})", (0.2, 30),
     lambda a, b: _iv_mono(lambda t: _sps.polygamma(1, t), a, b), 0.3),
]

# Zero-derivative (piecewise constant) functions: their outputs are differentiable (zero)
# almost everywhere, so FD agrees away from the jumps.
ROUNDING = [
    ("sign", "sign", "tnp.sign({x})", lambda a, b: (-1.0, 1.0), 1),
    ("signbit", "signbit", "tnp.copysign(tnp.ones_like({x}), {x})", lambda a, b: (-1.0, 1.0),
     0.3),
    ("floor", "floor", "tnp.floor({x})", lambda a, b: (math.floor(a), math.floor(b)), 1),
    ("ceil", "ceil", "np.ceil({x})", lambda a, b: (math.ceil(a), math.ceil(b)), 1),
    ("trunc", "trunc", "tnp.trunc({x})", lambda a, b: (math.floor(a), math.ceil(b)), 1),
    ("rint", "round", "tnp.rint({x})", lambda a, b: (math.floor(a), math.ceil(b)), 1),
    ("round1", "round", "tnp.round({x}, 1)", lambda a, b: (a - 0.1, b + 0.1), 0.5),
    ("fix", "trunc", "tnp.fix({x})", lambda a, b: (math.floor(a), math.ceil(b)), 0.3),
]


@op(6.0, prims={r[1] for r in UNARY})
def op_unary(sc: Scope):
    gen = sc.gen
    name, prim, tmpl, (lo, hi), bound, _ = pick_prim_row(gen, UNARY)
    src = sc.float_val()
    if gen.r.random() < 0.1:  # float functions of ints compute in float64
        src = sc.int_val(1 if lo > 0 else -3, 3, dtype=gen.r.choice(INT_DTYPES[:2]))
    if src.kind == "f":
        src = sc.in_domain(src, lo, hi)
        if prim == "cbrt" and gen.r.random() < 0.5:  # cbrt of negatives
            src = sc.emit(f"-{src.name}", -src.hi, -src.lo, [src])
    a, b = src.lo, src.hi
    if prim == "cbrt" and b < 0:
        a, b = -b, -a
        out = bound(a, b)
        out = (-out[1], -out[0])
    else:
        out = bound(a, b)
    sc.emit(tmpl.format(x=src.name), out[0], out[1], [src], jumpy=name in KINKS)


@op(2.0, prims={r[1] for r in ROUNDING})
def op_rounding(sc: Scope):
    gen = sc.gen
    name, prim, tmpl, bound, _ = pick_prim_row(gen, ROUNDING)
    src = sc.squash(sc.float_val(), 50.0)
    if gen.r.random() < 0.5:  # scaled, so that entries straddle integers
        src = sc.emit(f"{src.name} * {_fmt(gen.r.uniform(1.5, 4.0))}", src.lo * 4, src.hi * 4,
                      [src])
    if prim == "sign" and gen.r.random() < 0.2:
        src = sc.int_val(-3, 3)
    lo, hi = bound(src.lo, src.hi)
    sc.emit(tmpl.format(x=src.name), lo, hi, [src], jumpy=True)


# name, primitive, template, domain of x, domain of y, result bound, weight
def _b_add(x, y):
    return x.lo + y.lo, x.hi + y.hi


def _b_sub(x, y):
    return x.lo - y.hi, x.hi - y.lo


def _b_mul(x, y):
    return _iv_mul((x.lo, x.hi), (y.lo, y.hi))


def _b_div(x, y):
    return _iv_mul((x.lo, x.hi), _iv_mono(lambda t: 1 / t, y.lo, y.hi))


def _b_max(x, y):
    return max(x.lo, y.lo), max(x.hi, y.hi)


def _b_min(x, y):
    return min(x.lo, y.lo), min(x.hi, y.hi)


def _b_pow(x, y):
    cands = [a ** b for a in (x.lo, x.hi) for b in (y.lo, y.hi)]
    return min(cands), max(cands)


def _b_hyp(x, y):
    return 0.0, math.hypot(x.mag, y.mag)


def _b_lae(x, y):
    return max(x.lo, y.lo), max(x.hi, y.hi) + 0.7


def _b_mod(x, y):
    return min(0.0, y.lo), max(0.0, y.hi)


def _b_fdiv(x, y):
    lo, hi = _b_div(x, y)
    return math.floor(lo) - 1, math.ceil(hi) + 1


def _b_atan2(x, y):
    return -math.pi, math.pi


def _b_copysign(x, y):
    return -x.mag, x.mag


POS = (0.05, INF)


def _b_xlog(x, y):
    m = max(abs(x.lo), abs(x.hi)) * max(abs(math.log(y.lo)), abs(math.log(y.hi)))
    return -m, m


def _b_xlog1p(x, y):
    m = max(abs(x.lo), abs(x.hi)) * max(abs(math.log1p(y.lo)), abs(math.log1p(y.hi)))
    return -m, m


NZ = (0.3, INF)  # away from zero (a divisor); the sign is randomized below
ANY = (-INF, INF)
BINARY = [
    ("add", "add", "{x} + {y}", ANY, ANY, _b_add, 2),
    ("tnp.add", "add", "tnp.add({x}, {y})", ANY, ANY, _b_add, 0.5),
    ("sub", "sub", "{x} - {y}", ANY, ANY, _b_sub, 2),
    ("mul", "mul", "{x} * {y}", (-30, 30), (-30, 30), _b_mul, 2),
    ("div", "div", "{x} / {y}", (-30, 30), NZ, _b_div, 1.5),
    ("pow", "pow", "{x} ** {y}", (0.1, 10), (-2.5, 2.5), _b_pow, 1),
    ("power", "pow", "tnp.power({x}, {y})", (0.1, 10), (-2.5, 2.5), _b_pow, 0.5),
    ("maximum", "max", "tnp.maximum({x}, {y})", ANY, ANY, _b_max, 1),
    ("minimum", "min", "tnp.minimum({x}, {y})", ANY, ANY, _b_min, 1),
    ("fmax", "max", "tnp.fmax({x}, {y})", ANY, ANY, _b_max, 0.3),
    ("fmin", "min", "tnp.fmin({x}, {y})", ANY, ANY, _b_min, 0.3),
    ("arctan2", "atan2", "tnp.arctan2({x}, {y})", ANY, (0.1, INF), _b_atan2, 1),
    ("hypot", "hypot", "tnp.hypot({x}, {y})", (0.1, INF), ANY, _b_hyp, 1),
    ("logaddexp", "logaddexp", "tnp.logaddexp({x}, {y})", ANY, ANY, _b_lae, 1),
    ("logaddexp2", "logaddexp", "tnp.logaddexp2({x}, {y})", ANY, ANY,
     lambda x, y: (max(x.lo, y.lo), max(x.hi, y.hi) + 1.0), 0.3),
    ("mod", "rem", "tnp.mod({x}, {y})", (-30, 30), NZ, _b_mod, 1),
    ("rem_op", "rem", "{x} % {y}", (-30, 30), NZ, _b_mod, 0.5),
    ("floor_divide", "floor_divide", "{x} // {y}", (-30, 30), NZ, _b_fdiv, 0.5),
    ("fmod", "fmod", "tnp.fmod({x}, {y})", (-30, 30), NZ,
     lambda x, y: (-max(abs(y.lo), abs(y.hi)), max(abs(y.lo), abs(y.hi))), 0.3),
    ("copysign", "signbit", "tnp.copysign({x}, {y})", ANY, NZ, _b_copysign, 0.3),
    ("float_power", "pow", "tnp.float_power({x}, {y})", (0.1, 10), (-2.0, 2.0), _b_pow, 0.3),
    ("xlogy", "xlogy", "tss.xlogy({x}, {y})", (-30, 30), (0.1, 30), _b_xlog, 0.3),
    ("xlog1py", "xlog1py", "tss.xlog1py({x}, {y})", (-30, 30), (-0.9, 30), _b_xlog1p, 0.3),
]


JUMPS = {"rem", "floor", "floor_divide", "fmod"}  # binary rows whose result jumps
# rows whose derivative jumps (a float32 finite-difference step straddles the kink)
KINKS = {"relu", "abs", "abs_op", "fabs", "maximum", "minimum", "fmax", "fmin", "copysign",
         "hypot"}


@op(7.0, prims={r[1] for r in BINARY})
def op_binary(sc: Scope):
    gen = sc.gen
    r = gen.r
    name, prim, tmpl, dx, dy, bound, _ = pick_prim_row(gen, BINARY)
    x = sc.in_domain(sc.float_val(), *dx)
    form = r.random()
    if form < 0.2:  # a Python scalar or NumPy scalar operand, on either side
        lo, hi = (dy if dy != ANY else (-2.0, 2.0))
        val = r.uniform(max(lo, -3.0) + 0.05, min(hi, 3.0) - 0.05)
        if dy is NZ and r.random() < 0.5:
            val = -val
        lit = _fmt(val) if r.random() < 0.7 else f"np.{x.dtype.name}({_fmt(val)})"
        if name in ("add", "mul", "sub") and r.random() < 0.5:  # literal on the left
            expr = tmpl.format(x=lit, y=x.name)
            lo2, hi2 = bound(Val("", (), F64, val, val), x)
        else:
            expr = tmpl.format(x=x.name, y=lit)
            lo2, hi2 = bound(x, Val("", (), F64, val, val))
        sc.emit(expr, lo2, hi2, [x], jumpy=prim in JUMPS or name in KINKS)
        return
    y = sc.partner(x, "f")
    if y.kind == "f":
        if dy is NZ:
            y = sc.in_domain(y, 0.3, 4.0)
            if r.random() < 0.4:
                y = sc.emit(f"-{y.name}", -y.hi, -y.lo, [y])
        else:
            y = sc.in_domain(y, *dy)
    lo, hi = bound(x, y)
    sc.emit(tmpl.format(x=x.name, y=y.name), lo, hi, [x, y],
            jumpy=prim in JUMPS or name in KINKS)


@op(1.5, prims={"integer_pow", "mul", "div"})
def op_integer_pow(sc: Scope):
    r = sc.gen.r
    k = r.choice([0, 1, 2, 3, 4, 5, -1, -2, -3])
    x = sc.squash(sc.float_val(), 2.0)
    if k < 0:
        x = sc.in_domain(x, 0.3, 2.0)
    cands = [a ** k for a in (x.lo, x.hi)] + ([0.0] if x.lo < 0 < x.hi and k > 0 else [])
    lo, hi = min(cands), max(cands)
    if k % 2 == 0 and k > 0:
        lo = 0.0 if x.lo < 0 < x.hi else lo
    if k > 0 and k % 2 == 0:
        hi = max(abs(x.lo), abs(x.hi)) ** k
    expr = r.choice([f"{x.name} ** {k}", f"tnp.power({x.name}, {k})"]) if k >= 0 or \
        r.random() < 0.5 else f"{x.name} ** {float(k)!r}"
    sc.emit(expr, min(lo, hi), max(lo, hi), [x])


@op(1.0, prims={"nextafter"})
def op_nextafter(sc: Scope):
    """nextafter's derivative is zero by design (it is the identity to first order): its
    result is excluded from finite-difference checks."""
    x = sc.float_val()
    y = sc.partner(x, "f")
    sc.emit(f"tnp.nextafter({x.name}, {y.name})", x.lo - 1e-6, x.hi + 1e-6, [x, y],
            fd_ok=False)


@op(1.0, prims={"isnan", "isfinite", "select", "log", "div", "sqrt", "not", "and"})
def op_nonfinite(sc: Scope):
    """NaN and inf made on purpose, detected and masked away."""
    r = sc.gen.r
    x = sc.squash(sc.float_val(), 3.0)
    kind = r.choice(["log", "sqrt", "div", "isinf"])
    if kind == "log":
        bad = sc.emit(f"tnp.log({x.name})", -INF, math.log(max(x.hi, 1e-300)), [x],
                      fd_ok=False, finite=False)
    elif kind == "sqrt":
        bad = sc.emit(f"tnp.sqrt({x.name})", 0.0, math.sqrt(max(x.hi, 0.0)), [x],
                      fd_ok=False, finite=False)
    else:
        bad = sc.emit(f"{x.name} / ({x.name} - {x.name})", -INF, INF, [x], fd_ok=False,
                      finite=False)
    test = r.choice(["tnp.isnan({b})", "tnp.isfinite({b})", "tnp.isinf({b})",
                     "~tnp.isfinite({b})", "tnp.logical_not(tnp.isnan({b}))"])
    m = sc.emit(test.format(b=bad.name), 0, 1, [bad])
    m.finite = True
    safe = sc.emit(f"tnp.where(tnp.isfinite({bad.name}), {bad.name}, {_fmt(r.uniform(-1, 1))})",
                   min(bad.lo, -1.0) if math.isfinite(bad.lo) else -800.0,
                   max(bad.hi, 1.0) if math.isfinite(bad.hi) else 800.0, [bad], fd_ok=False)
    safe.finite = True


@op(2.5, prims={"eq", "ne", "lt", "le", "gt", "ge"})
def op_compare(sc: Scope):
    r = sc.gen.r
    x = sc.pick(lambda v: v.finite) or sc.float_val()
    kinds = {"f": "fi", "i": "if", "b": "b"}[x.kind]
    y = sc.partner(x, kinds)
    cmp = choose(sc.gen, ["<", "<=", ">", ">=", "==", "!="] if x.kind != "b" else ["==", "!="],
                 {"ge": ">=", "le": "<=", "lt": "<", "gt": ">", "eq": "==", "ne": "!="})
    if r.random() < 0.3:
        cmp = {"<": "tnp.less", "<=": "tnp.less_equal", ">": "tnp.greater",
               ">=": "tnp.greater_equal", "==": "tnp.equal", "!=": "tnp.not_equal"}[cmp]
        sc.emit(f"{cmp}({x.name}, {y.name})", 0, 1, [x, y], jumpy=True)
    else:
        sc.emit(f"{x.name} {cmp} {y.name}", 0, 1, [x, y], jumpy=True)


@op(2.0, prims={"and", "or", "xor", "not", "max", "min"})
def op_logic(sc: Scope):
    a = sc.bool_val()
    b = sc.partner(a, "b")
    form = choose(sc.gen, ["{a} & {b}", "{a} | {b}", "{a} ^ {b}", "~{a}",
                           "tnp.logical_and({a}, {b})",
                     "tnp.logical_or({a}, {b})", "tnp.logical_xor({a}, {b})",
                     "tnp.logical_not({a})", "{a} + {b}", "{a} * {b}", "tnp.maximum({a}, {b})",
                           "tnp.minimum({a}, {b})", "{a} == {b}"],
                  {"xor": "{a} ^ {b}", "not": "~{a}", "or": "{a} | {b}", "and": "{a} & {b}"})
    sc.emit(form.format(a=a.name, b=b.name), 0, 1, [a, b] if "{b}" in form else [a])


@op(4.0, prims={"add", "sub", "mul", "floor_divide", "rem", "and", "or", "xor", "max", "min",
                "abs", "neg", "sign", "integer_pow"})
def op_int(sc: Scope):
    """Integer arithmetic of every width (wrapping around as NumPy does)."""
    r = sc.gen.r
    x = sc.pick(lambda v: v.kind == "i") or sc.int_val(-5, 5)
    form = choose(sc.gen, ["add", "sub", "mul", "fdiv", "mod", "and", "or", "xor", "max", "min",
                           "abs", "neg", "sign", "pow", "lit", "divide"],
                  {"floor_divide": "fdiv", "rem": "mod", "xor": "xor", "and": "and", "or": "or",
                   "abs": "abs", "neg": "neg", "sign": "sign"})
    if form in ("abs", "neg", "sign"):
        expr = {"abs": f"tnp.abs({x.name})", "neg": f"-{x.name}", "sign": f"tnp.sign({x.name})"
                }[form]
        bound = {"abs": (0, x.mag), "neg": (-x.hi, -x.lo), "sign": (-1, 1)}[form]
        sc.emit(expr, *bound, [x])
        return
    if form == "pow":
        k = r.choice([0, 1, 2, 3])
        sc.emit(f"{x.name} ** {k}", -x.mag ** k, x.mag ** k, [x])
        return
    if form == "lit":
        k = r.choice([3, -2, 7, 1] if x.dtype.kind == "i" else [3, 7, 1])
        c = r.choice([1, -4] if x.dtype.kind == "i" else [1, 4])
        sc.emit(f"{x.name} * {k} + {c}", -abs(k) * x.mag - 4, abs(k) * x.mag + 4, [x])
        return
    if form in ("fdiv", "mod"):
        y = sc.int_val(1, 4, dtype=x.dtype if r.random() < 0.6 else None)
        if r.random() < 0.3 and y.dtype.kind == "i":
            y = sc.emit(f"-{y.name}", -y.hi, -y.lo, [y])
        if _bshape(x.shape, y.shape) is None:
            y = sc.gen.new_input((), x.dtype, 1, 4)
        expr = f"{x.name} // {y.name}" if form == "fdiv" else f"{x.name} % {y.name}"
        bound = (-x.mag - 1, x.mag + 1) if form == "fdiv" else (-4, 4)
        sc.emit(expr, *bound, [x, y])
        return
    y = sc.partner(x, "i")
    if np.result_type(x.dtype, y.dtype).kind not in "iu":  # int64 with uint64: float64
        y = sc.gen.new_input(y.shape, x.dtype, 0, 5)
    if form == "divide":  # true division of ints is float64
        y = sc.int_val(1, 4)
        if _bshape(x.shape, y.shape) is None:
            y = sc.gen.new_input((), x.dtype, 1, 4)
        sc.emit(f"{x.name} / {y.name}", -x.mag, x.mag, [x, y])
        return
    expr = {"add": "{x} + {y}", "sub": "{x} - {y}", "mul": "{x} * {y}", "and": "{x} & {y}",
            "or": "{x} | {y}", "xor": "{x} ^ {y}", "max": "tnp.maximum({x}, {y})",
            "min": "tnp.minimum({x}, {y})"}[form].format(x=x.name, y=y.name)
    m = x.mag + y.mag
    bound = {"add": (-m, m), "sub": (-m, m), "mul": (-x.mag * y.mag, x.mag * y.mag),
             "max": (max(x.lo, y.lo), max(x.hi, y.hi)),
             "min": (min(x.lo, y.lo), min(x.hi, y.hi))}.get(form, (-2 * m - 1, 2 * m + 1))
    if form in ("and", "or", "xor"):
        bound = (-4 * m - 4, 4 * m + 4)
    sc.emit(expr, *bound, [x, y])


@op(3.0, prims={"convert"})
def op_convert(sc: Scope):
    """astype between every pair of dtypes (float -> int only inside the target's range)."""
    r = sc.gen.r
    x = sc.pick(lambda v: v.finite) or sc.float_val()
    dt = r.choice(ALL_DTYPES)
    if x.kind == "f" and dt.kind in "iu":
        lo, hi = _int_range(dt)
        if not (x.lo > max(lo, -1e6) + 1 and x.hi < min(hi, 1e6) - 1) or (
                dt.kind == "u" and x.lo < 0):
            x = sc.in_domain(x, 0.0 if dt.kind == "u" else -100.0, 100.0)
    form = r.choice(["tnp.astype({x}, np.{d})", "tnp.asarray({x}, np.{d})"]
                    + ([] if x.py else ["{x}.astype(np.{d})"]))
    if dt.kind == "b":
        lo, hi = 0, 1
    elif dt.kind in "iu" and x.kind == "f":
        lo, hi = math.floor(x.lo), math.ceil(x.hi)
    else:
        lo, hi = x.lo, x.hi
    sc.emit(form.format(x=x.name, d=dt.name), lo, hi, [x],
            jumpy=x.kind == "f" and dt.kind in "biu")


@op(2.0, prims={"select"})
def op_where(sc: Scope):
    r = sc.gen.r
    x = sc.pick(lambda v: v.finite) or sc.float_val()
    y = sc.partner(x, "f" if x.kind == "f" else ("i" if x.kind == "i" else "b"))
    cond_form = r.random()
    c_val = None
    if cond_form < 0.5:
        c = c_val = sc.partner(x, "b")
        cname = c.name
        uses = [x, y, c]
        if _bshape(c.shape, _bshape(x.shape, y.shape) or ()) is None:
            cname, uses = "False", [x, y]
    else:
        z = sc.float_val() if x.kind != "f" else x
        z = c_val = sc.emit(f"{z.name} > {_fmt(r.uniform(-0.5, 0.5))}", 0, 1, [z], jumpy=True)
        cname = z.name
        uses = [x, y, z]
        if _bshape(z.shape, _bshape(x.shape, y.shape) or ()) is None:
            cname, uses = "True", [x, y]
    if r.random() < 0.25:  # scalar branches
        lit = _fmt(r.uniform(-1, 1)) if x.kind == "f" else str(r.randint(-3, 3)) \
            if x.kind == "i" else "False"
        expr = f"tnp.where({cname}, {x.name}, {lit})"
        lo, hi = min(x.lo, -1), max(x.hi, 1)
        uses = [u for u in uses if u is not y or u is c_val]
    else:
        expr = f"tnp.where({cname}, {x.name}, {y.name})"
        lo, hi = min(x.lo, y.lo), max(x.hi, y.hi)
    sc.emit(expr, lo, hi, uses)


@op(1.0, prims={"max", "min"})
def op_clip(sc: Scope):
    r = sc.gen.r
    x = sc.pick(lambda v: v.kind in "fi" and v.finite) or sc.float_val()
    lo, hi = sorted([r.uniform(-1.0, 1.0), r.uniform(-1.0, 1.5)])
    if x.kind == "i":
        lo, hi = int(lo * 3) - 1, int(hi * 3) + 1
        if x.dtype.kind == "u":
            lo, hi = abs(lo), abs(lo) + abs(hi)
    form = r.choice(["tnp.clip({x}, {lo}, {hi})", "tnp.clip({x}, {lo}, {hi})" if x.py else
                     "{x}.clip({lo}, {hi})",
                     "tnp.clip({x}, None, {hi})", "tnp.clip({x}, {lo}, None)"])
    sc.emit(form.format(x=x.name, lo=lo, hi=hi), min(lo, x.lo), max(hi, x.hi), [x], jumpy=True)


# =============================================================================================
# Reductions and cumulative ops
# =============================================================================================

def _axis_arg(r, shape, multi=True):
    """A random `axis` argument: None, an int (maybe negative) or a tuple; and the axes."""
    nd = len(shape)
    if nd == 0:
        return "None", ()
    c = r.random()
    if c < 0.25:
        return "None", tuple(range(nd))
    if c < 0.75 or not multi or nd == 1:
        a = r.randrange(nd)
        return str(a - nd if r.random() < 0.4 else a), (a,)
    axes = sorted(r.sample(range(nd), r.randint(1, nd)))
    return repr(tuple(a - nd if r.random() < 0.3 else a for a in axes)), tuple(axes)


def _count(shape, axes):
    return int(np.prod([shape[a] for a in axes], dtype=np.int64)) if axes else 1


@op(5.0, prims={"reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "argmax", "argmin",
                "div", "sqrt"})
def op_reduce(sc: Scope):
    r = sc.gen.r
    x = sc.pick(lambda v: v.finite and v.shape != () or r.random() < 0.1) or sc.float_val()
    fn = choose(sc.gen, ["sum", "sum", "mean", "max", "min", "prod", "var", "std", "argmax",
                         "argmin", "any", "all", "count_nonzero", "amax", "ptp_like"],
                {"argmax": "argmax", "argmin": "argmin", "reduce_prod": "prod",
                 "reduce_min": "min", "reduce_max": "max", "sqrt": "std"})
    if x.kind == "b" and fn in ("var", "std", "mean", "prod", "ptp_like"):
        fn = "sum"
    axis, axes = _axis_arg(r, x.shape, multi=fn not in ("argmax", "argmin"))
    n = _count(x.shape, axes) if axes else 1
    empty = x.size == 0 or n == 0
    if fn in ("max", "min", "amax", "argmax", "argmin", "ptp_like") and (empty or x.size == 0):
        fn = "sum"
    keep = r.random() < 0.3
    kd = ", keepdims=True" if keep else ""
    if fn == "prod":
        if x.kind == "f":
            x = sc.in_domain(x, 0.4, 1.6) if r.random() < 0.7 else sc.squash(x, 1.5)
        elif x.mag > 3:
            x = sc.int_val(-3, 3, shape=x.shape)
        mg = max(x.mag, 1.0) ** n
        lo, hi = (-mg, mg)
    elif fn in ("sum", "count_nonzero"):
        lo, hi = min(n * x.lo, 0.0, x.lo), max(n * x.hi, 0.0, x.hi)
    elif fn in ("var", "std"):
        lo, hi = 0.0, (x.hi - x.lo) ** 2 * max(n, 1) + 1
    elif fn in ("argmax", "argmin"):
        lo, hi = 0.0, float(max(x.shape) if x.shape else 0)
    elif fn in ("any", "all"):
        lo, hi = 0.0, 1.0
    else:
        lo, hi = x.lo, x.hi
    method = r.random() < 0.3 and not x.py
    if fn == "ptp_like":
        expr = f"tnp.max({x.name}, axis={axis}{kd}) - tnp.min({x.name}, axis={axis}{kd})"
        lo, hi = 0.0, x.hi - x.lo
    elif fn == "var" or fn == "std":
        ddof = r.choice([0, 0, 1])
        if fn == "std" and n - ddof <= 0 or n <= ddof:
            ddof = 0
        if fn == "std" and n <= 1:
            fn = "var"
        expr = (f"{x.name}.{fn}(axis={axis}, ddof={ddof}{kd})" if method else
                f"tnp.{fn}({x.name}, axis={axis}, ddof={ddof}{kd})")
        if n == 0 or n - ddof <= 0:
            sc.emit(expr, lo, hi, [x], fd_ok=False, finite=False)
            return
    elif fn in ("argmax", "argmin") and axis != "None" and r.random() < 0.3:
        expr = f"tnp.{fn}({x.name}, axis={axis})"
    elif fn in ("argmax", "argmin"):
        expr = f"tnp.{fn}({x.name}, axis={axis}{kd})"
    elif fn == "sum" and r.random() < 0.25 and x.kind != "f":
        dt = r.choice(["np.int64", "np.int32", "np.float64"])
        expr = f"tnp.sum({x.name}, axis={axis}, dtype={dt}{kd})"
    elif fn == "max" and r.random() < 0.2 and x.kind != "b":
        ini = r.uniform(-1, 1) if x.kind == "f" else r.randint(-2, 2)
        expr = f"tnp.max({x.name}, axis={axis}, initial={ini}{kd})"
        lo, hi = min(lo, ini), max(hi, ini)
    elif method and fn in ("sum", "mean", "max", "min", "prod", "any", "all"):
        expr = f"{x.name}.{fn}(axis={axis}{kd})"
    elif fn == "mean" and empty:
        sc.emit(f"tnp.mean({x.name}, axis={axis}{kd})", lo, hi, [x], fd_ok=False,
                finite=False)
        return
    else:
        expr = f"tnp.{fn}({x.name}, axis={axis}{kd})"
    sc.emit(expr, lo, hi, [x], jumpy=fn in ("argmax", "argmin", "max", "min", "amax",
                                            "ptp_like"))


@op(2.0, prims={"cumsum", "cumprod", "cumlinrec"})
def op_cumulative(sc: Scope):
    r = sc.gen.r
    x = sc.pick(lambda v: v.finite and v.kind != "b") or sc.float_val()
    fn = choose(sc.gen, ["cumsum", "cumprod"], {"cumsum": "cumsum", "cumprod": "cumprod",
                                                "cumlinrec": "cumprod"})
    nd = len(x.shape)
    axis = "None" if nd == 0 or r.random() < 0.25 else str(r.randrange(-nd, nd))
    n = x.size if axis == "None" else x.shape[int(axis)]
    if fn == "cumprod":
        if x.kind == "f":
            x = sc.in_domain(x, 0.5, 1.5) if r.random() < 0.6 else sc.squash(x, 1.3)
        elif x.mag > 2:
            x = sc.int_val(-2, 2, shape=x.shape)
        mg = max(x.mag, 1.0) ** max(n, 1)
        lo, hi = -mg, mg
    else:
        lo, hi = min(n * x.lo, x.lo, 0), max(n * x.hi, x.hi, 0)
    form = r.random()
    if form < 0.2 and x.kind == "i":
        expr = f"tnp.{fn}({x.name}, axis={axis}, dtype=np.int32)"
    elif form < 0.4 and not x.py:
        expr = f"{x.name}.{fn}(axis={axis})"
    else:
        expr = f"tnp.{fn}({x.name}, axis={axis})"
    sc.emit(expr, lo, hi, [x])


@op(1.5, prims={"cumsum", "cumprod", "cumlinrec", "argmax", "argmin", "iota", "pad",
                "broadcast_in_dim", "scatter_add", "gather", "stop_gradient", "integer_pow"})
def op_direct(sc: Scope):
    """Primitives bound directly, for forms no front-end function produces."""
    r = sc.gen.r
    form = choose(sc.gen, ["cumrev", "cumlinrec", "argi32", "iota", "pad_interior", "bcast",
                           "scatter", "gather_clamp", "stop_gradient", "ipow"],
                  {"iota": "iota", "cumlinrec": "cumlinrec", "pad": "pad_interior",
                   "scatter_add": "scatter", "gather": "gather_clamp",
                   "stop_gradient": "stop_gradient", "argmax": "argi32", "argmin": "argi32",
                   "broadcast_in_dim": "bcast", "integer_pow": "ipow"})
    if form == "iota":
        shape = sc.gen.shape(r.choice([1, 2, 3]))
        dim = r.randrange(len(shape))
        dt = r.choice(["np.int32", "np.int64", "np.float64", "np.float32", "np.uint8"])
        v = sc.emit(f"iota({dt}, {shape!r}, {dim})", 0, max(shape[dim] - 1, 0), [])
        if v.kind == "f" or r.random() < 0.5:
            x = sc.float_val()
            if _bshape(x.shape, v.shape) is not None:
                sc.emit(f"{x.name} * {v.name}", *_iv_mul((x.lo, x.hi), (v.lo, v.hi)), [x, v])
        return
    x = sc.pick(lambda v: v.kind == "f" and v.finite and v.shape != ()) or \
        sc.float_val(shape=sc.gen.shape(r.choice([1, 2])))
    nd = len(x.shape)
    if nd == 0:
        x = sc.emit(f"tnp.reshape({x.name}, (1,))", x.lo, x.hi, [x])
        nd = 1
    axis = r.randrange(nd)
    n = x.shape[axis]
    if form == "cumrev":
        fn = r.choice(["cumsum", "cumprod"])
        if fn == "cumprod":
            x = sc.in_domain(x, 0.5, 1.5)
            lo, hi = -(1.5 ** n), 1.5 ** n
        else:
            lo, hi = min(n * x.lo, 0), max(n * x.hi, 0)
        sc.emit(f"rd.{fn}({x.name}, {axis}, reverse=True)", lo, hi, [x])
    elif form == "cumlinrec":
        a = sc.in_domain(sc.float_val(shape=x.shape), -0.9, 0.9)
        if a.dtype != x.dtype:
            a = sc.emit(f"tnp.astype({a.name}, np.{x.dtype.name})", a.lo, a.hi, [a])
        m = x.mag * max(n, 1) * 10
        sc.emit(f"rd.cumlinrec({a.name}, {x.name}, {axis}, reverse={r.random() < 0.5})",
                -m, m, [a, x])
    elif form == "argi32":
        if x.size == 0:
            return
        fn = r.choice(["argmax", "argmin"])
        sc.emit(f"rd.{fn}({x.name}, {axis}, np.int32)", 0, n, [x], jumpy=True)
    elif form == "pad_interior":
        lows = [r.randint(0, 2) for _ in range(nd)]
        highs = [r.randint(0, 2) for _ in range(nd)]
        inter = [r.randint(0, 2) for _ in range(nd)]
        val = _fmt(r.uniform(-1, 1))
        sc.emit(f"st.pad({x.name}, {val}, {lows}, {highs}, {inter})", min(x.lo, -1),
                max(x.hi, 1), [x])
    elif form == "bcast" and x.shape[axis]:  # a size-1 axis expanded, a new axis inserted
        shape = list(x.shape)
        shape[axis] = 1
        key = ", ".join(":" if i != axis else "0:1" for i in range(nd))
        y = sc.emit(f"{x.name}[{key}]", x.lo, x.hi, [x])
        pos = r.randrange(nd + 1)
        out = shape[:pos] + [r.choice([2, 3])] + shape[pos:]
        bdims = [i for i in range(nd + 1) if i != pos]
        out[bdims[axis]] = r.choice([1, 2, 3])
        sc.emit(f"st.broadcast_in_dim({y.name}, {tuple(out)!r}, {tuple(bdims)!r})", x.lo,
                x.hi, [y])
    elif form in ("scatter", "gather_clamp"):
        k = r.randint(1, nd)
        if 0 in x.shape[:k]:
            return
        idx_shape = (r.choice([1, 2, 3]), k)
        hi_idx = max(x.shape[:k]) + 1
        idx = sc.gen.new_input(idx_shape, np.dtype(r.choice(["int64", "int32", "int8"])),
                               -2, hi_idx)
        if form == "gather_clamp":  # out-of-range indices are clamped
            sc.emit(f"ix.gather({x.name}, {idx.name})", x.lo, x.hi, [x, idx])
        else:
            upd_shape = idx_shape[:1] + x.shape[k:]
            u = sc.float_val(shape=upd_shape)
            if u.dtype != x.dtype:
                u = sc.emit(f"tnp.astype({u.name}, np.{x.dtype.name})", u.lo, u.hi, [u])
            m = x.mag + idx_shape[0] * u.mag
            sc.emit(f"ix.scatter_add({x.name}, {idx.name}, {u.name})", -m, m, [x, idx, u])
    elif form == "stop_gradient":
        y = sc.emit(f"tj.stop_gradient({x.name})", x.lo, x.hi, [x], fd_ok=False)
        sc.emit(f"{y.name} * {x.name}", *_iv_mul((x.lo, x.hi), (x.lo, x.hi)), [x, y],
                fd_ok=False)
    else:  # integer_pow bound directly, exponents 0, 1 and negative included
        k = r.choice([0, 1, -1, 2, -3])
        x = sc.in_domain(x, 0.4, 2.0)
        lo, hi = _iv_mono(lambda t: t ** k, x.lo, x.hi)
        sc.emit(f"ew.integer_pow({x.name}, {k})", lo, hi, [x])


@op(1.0, prims={"argsort", "searchsorted", "gather"})
def op_sort(sc: Scope):
    """Sorting and order statistics: argsort (+ gather for sort, median, quantile) and
    searchsorted. Ties (duplicated values) make sort's derivative one-sided: jumpy."""
    r = sc.gen.r
    form = choose(sc.gen, ["sort", "argsort", "median", "quantile", "searchsorted"],
                  {"argsort": "sort", "searchsorted": "searchsorted"})
    x = sc.pick(lambda v: v.kind == "f" and v.finite and v.shape != ()) or \
        sc.float_val(shape=sc.gen.shape(r.choice([1, 2])))
    nd = len(x.shape)
    if nd == 0:
        x = sc.emit(f"tnp.reshape({x.name}, (1,))", x.lo, x.hi, [x])
        nd = 1
    axis = r.randrange(-nd, nd)
    n = x.shape[axis]
    if form == "sort":
        sc.emit(f"tnp.sort({x.name}, axis={axis})", x.lo, x.hi, [x], jumpy=True)
    elif form == "argsort":
        sc.emit(f"tnp.argsort({x.name}, axis={axis})", 0, max(n - 1, 0), [x], jumpy=True)
    elif form in ("median", "quantile") and x.size:
        if form == "median":
            sc.emit(f"tnp.median({x.name}, axis={axis})", x.lo, x.hi, [x], jumpy=True)
        else:
            q = [round(r.uniform(0, 1), 2) for _ in range(r.choice([1, 2]))]
            q = q[0] if len(q) == 1 and r.random() < 0.5 else q
            sc.emit(f"tnp.quantile({x.name}, {q!r}, axis={axis})", x.lo, x.hi, [x],
                    jumpy=True)
    elif form == "searchsorted":
        a = sc.emit(f"tnp.sort(tnp.ravel({x.name}))", x.lo, x.hi, [x], jumpy=True)
        v = sc.float_val()
        if v.dtype != a.dtype:
            v = sc.emit(f"tnp.astype({v.name}, np.{a.dtype.name})", v.lo, v.hi, [v])
        side = r.choice(["left", "right"])
        sc.emit(f"tnp.searchsorted({a.name}, {v.name}, side={side!r})", 0, x.size, [a, v],
                jumpy=True)


@op(0.6, prims={"solve", "triangular_solve", "inv", "slogdet", "cholesky", "eigh", "svd",
               "qr", "eig"})
def op_linalg(sc: Scope):
    """Dense linear algebra on a well-conditioned matrix built from a new input (diagonally
    dominant; symmetric positive definite for cholesky and eigh). cholesky's derivative
    reaches triangular_solve; eigvalsh's needs distinct eigenvalues, which random matrices
    have. The SVD gives its singular values (or the pseudo-inverse, through them and the
    vectors), QR its R factor (and Q: its columns' signs are fixed by LAPACK's convention,
    so both are smooth functions of a well-conditioned matrix). The general eigenvalues
    enter through sum(λ³) (= tr m³, whatever LAPACK's order), complex matrices through the
    singular values of m + 0.5i I."""
    r = sc.gen.r
    form = choose(sc.gen, ["solve", "inv", "slogdet", "det", "cholesky", "eigvalsh",
                           "svdvals", "pinv", "qr", "eigvals", "complex_svdvals"],
                  {"solve": "solve", "inv": "inv", "slogdet": "slogdet",
                   "cholesky": "cholesky", "triangular_solve": "cholesky",
                   "eigh": "eigvalsh", "svd": "svdvals", "qr": "qr", "eig": "eigvals"})
    n = r.choice([1, 2, 3])
    x = sc.float_val(shape=(n, n))
    m = sc.emit(f"{x.name} + {2.0 * n} * tnp.eye({n}, dtype={x.name}.dtype)", -3 * n, 3 * n,
                [x])
    if form in ("cholesky", "eigvalsh"):
        m = sc.emit(f"{m.name} @ tnp.swapaxes({m.name}, -1, -2)", 0, 30 * n * n, [m])
    big = 100.0 * n ** 3
    if form == "solve":
        b = sc.float_val(shape=(n,) if r.random() < 0.5 else (n, r.choice([1, 2])))
        if b.dtype != m.dtype:
            b = sc.emit(f"tnp.astype({b.name}, np.{m.dtype.name})", b.lo, b.hi, [b])
        sc.emit(f"tnp.linalg.solve({m.name}, {b.name})", -big, big, [m, b])
    elif form == "inv":
        sc.emit(f"tnp.linalg.inv({m.name})", -1.0, 1.0, [m])
    elif form == "slogdet":
        sc.emit(f"tnp.linalg.slogdet({m.name})[1]", -10.0 * n, 10.0 * n, [m])
    elif form == "det":
        sc.emit(f"tnp.linalg.det({m.name})", -big, big, [m])
    elif form == "cholesky":
        sc.emit(f"tnp.linalg.cholesky({m.name})", -big, big, [m])
    elif form == "svdvals":
        sc.emit(f"tnp.linalg.svdvals({m.name})", 0.0, 3.0 * n * n, [m])
    elif form == "pinv":
        sc.emit(f"tnp.linalg.pinv({m.name})", -1.0, 1.0, [m])
    elif form == "eigvals":
        b = 1.2 * n * (3.0 * n * n) ** 3
        sc.emit(f"tnp.real(tnp.sum(tnp.linalg.eigvals({m.name}) ** 3) * (1 + 0.5j))", -b, b,
                [m])
    elif form == "complex_svdvals":
        sc.emit(f"tnp.linalg.svdvals({m.name} + 0.5j * tnp.eye({n}))", 0.0, 3.0 * n * n + 1,
                [m])
    elif form == "qr":
        part = r.choice(["Q", "R"])
        bound = 1.0 if part == "Q" else 3.0 * n * n
        sc.emit(f"tnp.linalg.qr({m.name}).{part}", -bound, bound, [m])
    else:
        sc.emit(f"tnp.linalg.eigvalsh({m.name})", 0.0, big, [m])


# A spectrum is rotated before its real or imaginary part is read: the imaginary parts of
# a real signal's full transform sum to exactly zero, and a sum of them would compare
# rounding errors.
ROTATE = "(1 + 0.5j)"


@op(0.6, prims={"fft"})
def op_fft(sc: Scope):
    """Discrete Fourier transforms of a real value along one axis (two for fft2), read back
    as real values: a part of fft/ifft/rfft/ihfft (bounded by the scaled sum of the
    magnitudes), irfft of an rfft (the value again), hfft of an rfft. Lengths n= pad or
    crop; norms vary."""
    r = sc.gen.r
    form = choose(sc.gen, ["fft", "ifft", "rfft", "irfft", "fft2", "hfft", "ihfft"])
    x = sc.pick(lambda v: v.kind == "f" and v.finite and v.shape != () and max(v.shape) > 0)
    if x is None:
        x = sc.float_val(shape=sc.gen.shape(r.choice([1, 2])))
    if x.shape == () or max(x.shape) == 0:
        x = sc.gen.new_input((r.choice([1, 4, 5]),), sc.gen.float_dtype(), -2.0, 2.0)
    nd = len(x.shape)
    axes = [d for d in range(nd) if x.shape[d] > 0]
    axis = r.choice(axes)
    if form == "fft2" and len(axes) < 2:
        form = "fft"
    length = x.shape[axis]
    norm = r.choice([None, "ortho", "forward"])
    m = x.mag
    part = r.choice(["real", "imag"])
    if form in ("fft", "ifft", "rfft", "ihfft"):
        n = r.choice([None, None, length + 1, max(length - 1, 1)])
        size = length if n is None else n
        inverse = form in ("ifft", "ihfft")  # ihfft scales as an inverse
        scale = {None: 1.0 / size if inverse else 1.0, "ortho": size ** -0.5,
                 "forward": 1.0 if inverse else 1.0 / size}[norm]
        bound = 1.13 * scale * size * m + 1e-6
        sc.emit(f"tnp.{part}({ROTATE} * tnp.fft.{form}({x.name}, n={n}, axis={axis - nd}, "
                f"norm={norm!r}))", -bound, bound, [x])
    elif form == "fft2":
        other = r.choice([d for d in axes if d != axis])
        size = length * x.shape[other]
        scale = {None: 1.0, "ortho": size ** -0.5, "forward": 1.0 / size}[norm]
        bound = 1.13 * scale * size * m + 1e-6
        sc.emit(f"tnp.{part}({ROTATE} * tnp.fft.fft2({x.name}, axes=({axis}, {other}), "
                f"norm={norm!r}))", -bound, bound, [x])
    elif form == "irfft":
        pad = 1e-3 * m + 1e-6
        sc.emit(f"tnp.fft.irfft(tnp.fft.rfft({x.name}, axis={axis}, norm={norm!r}), "
                f"n={length}, axis={axis}, norm={norm!r})", x.lo - pad, x.hi + pad, [x])
    else:  # hfft of an orthonormal rfft: at most n sqrt(n) m before the norm's scaling
        scale = {None: 1.0, "ortho": length ** -0.5, "forward": 1.0 / length}[norm]
        bound = 1.01 * scale * length * length ** 0.5 * m + 1e-6
        sc.emit(f"tnp.fft.hfft(tnp.fft.rfft({x.name}, axis={axis}, norm='ortho'), "
                f"n={length}, axis={axis}, norm={norm!r})", -bound, bound, [x])


@op(0.8, prims={"real", "imag", "conj", "abs", "exp", "mul"})
def op_complex(sc: Scope):
    """Real values through complex intermediates and back: phases, moduli, conjugates, the
    argument of a point in the upper half plane (smooth there), and a polynomial in z."""
    r = sc.gen.r
    x = sc.squash(sc.float_val(), 3.0)
    y = sc.squash(sc.partner(x, "f"), 3.0)
    form = choose(sc.gen, ["phase", "modulus", "conj", "angle", "poly"],
                  {"conj": "conj", "real": "phase", "imag": "conj", "abs": "modulus"})
    mx, my = x.mag, y.mag
    if form == "phase":  # re(conj(exp(ix)) (y + 2i)) = y cos x + 2 sin x
        sc.emit(f"tnp.real(tnp.conj(tnp.exp(1j * {x.name})) * ({y.name} + 2j))", -(my + 2),
                my + 2, [x, y])
    elif form == "modulus":  # |x + i (y^2 + 0.5)|: never 0, so smooth
        b = math.hypot(mx, my * my + 0.5)
        sc.emit(f"tnp.abs({x.name} + 1j * ({y.name} * {y.name} + 0.5))", 0.5, b, [x, y])
    elif form == "conj":  # im(conj(y + ix) y) = -x y
        sc.emit(f"tnp.imag(tnp.conj({y.name} + 1j * {x.name}) * {y.name})", -mx * my,
                mx * my, [x, y])
    elif form == "angle":  # arg(y + i (x^2 + 1)) in (0, pi)
        sc.emit(f"tnp.angle({y.name} + 1j * ({x.name} * {x.name} + 1.0))", 0.0, math.pi,
                [x, y])
    else:  # re / im of z^2 + z for z = x + iy
        part = r.choice(["real", "imag"])
        b = (mx + my) ** 2 + mx + my
        sc.emit(f"tnp.{part}(({x.name} + 1j * {y.name}) ** 2 + ({x.name} + 1j * {y.name}))",
                -b, b, [x, y])


@op(1.5, prims={"logaddexp", "reduce_max", "exp", "log", "stop_gradient", "reduce_sum"})
def op_nn(sc: Scope):
    r = sc.gen.r
    x = sc.squash(sc.pick(lambda v: v.kind == "f" and v.finite and v.shape != ()
                          and v.size > 0) or
                  sc.float_val(shape=sc.gen.shape(2)), 20.0)
    if x.size == 0:
        return
    fn = r.choice(["logsumexp", "softmax", "log_softmax"])
    nd = len(x.shape)
    if nd == 0:
        fn = "logsumexp"
    axis = str(r.randrange(-nd, nd)) if nd else "None"
    if fn == "logsumexp":
        axis = axis if r.random() < 0.7 else "None"
        kd = ", keepdims=True" if r.random() < 0.3 else ""
        n = x.size
        sc.emit(f"nn.logsumexp({x.name}, axis={axis}{kd})", x.lo, x.hi + math.log(n + 1),
                [x])
    elif fn == "softmax":
        sc.emit(f"nn.softmax({x.name}, axis={axis})", 0.0, 1.0, [x])
    else:
        sc.emit(f"nn.log_softmax({x.name}, axis={axis})", x.lo - x.hi - math.log(x.size + 1),
                0.0, [x])


# =============================================================================================
# Shapes, slicing, joining, indexing
# =============================================================================================

def _factor_shape(r, size):
    """A random shape with `size` elements."""
    if size == 0:
        return r.choice([(0,), (0, 2), (2, 0, 1)])
    dims = []
    rest = size
    for p in (2, 3, 5, 7):
        while rest % p == 0:
            dims.append(p)
            rest //= p
    if rest > 1:
        dims.append(rest)
    r.shuffle(dims)
    out = []
    for d in dims:
        if out and r.random() < 0.5:
            out[-1] *= d
        else:
            out.append(d)
    if r.random() < 0.3:
        out.insert(r.randrange(len(out) + 1), 1)
    return tuple(out)


@op(4.0, prims={"reshape", "transpose", "broadcast_in_dim", "rev", "concatenate", "slice"})
def op_shape(sc: Scope):
    r = sc.gen.r
    x = sc.pick(lambda v: v.size <= 200 and not v.py) or sc.float_val()
    nd = len(x.shape)
    c = choose(sc.gen, ["reshape", "ravel", "transpose", "T", "swapaxes", "moveaxis",
                        "expand_dims", "squeeze", "broadcast_to", "tile", "repeat", "flip",
                        "roll", "atleast_2d", "flatten"],
               {"rev": "flip", "concatenate": "roll", "transpose": "T",
                "broadcast_in_dim": "broadcast_to", "reshape": "reshape", "slice": "roll"})
    if c == "reshape":
        new = list(_factor_shape(r, x.size))
        if new and r.random() < 0.4 and x.size:
            new[r.randrange(len(new))] = -1
        expr = r.choice([f"tnp.reshape({x.name}, {tuple(new)!r})",
                         f"{x.name}.reshape({tuple(new)!r})"])
    elif c in ("ravel", "flatten"):
        expr = f"tnp.ravel({x.name})" if c == "ravel" else f"{x.name}.flatten()"
    elif c == "transpose" and nd >= 2:
        perm = list(range(nd))
        r.shuffle(perm)
        perm = [p - nd if r.random() < 0.3 else p for p in perm]
        expr = r.choice([f"tnp.transpose({x.name}, {tuple(perm)!r})",
                         f"{x.name}.transpose({tuple(perm)!r})"])
    elif c == "T" or (c == "transpose" and nd < 2):
        expr = f"{x.name}.T"
    elif c == "swapaxes" and nd >= 2:
        a, b = r.sample(range(-nd, nd), 2)
        if a % nd == b % nd:
            b = (a + 1) % nd
        expr = f"tnp.swapaxes({x.name}, {a}, {b})"
    elif c == "moveaxis" and nd >= 2:
        expr = f"tnp.moveaxis({x.name}, {r.randrange(nd)}, {r.randrange(-nd, nd)})"
    elif c == "expand_dims" or c in ("swapaxes", "moveaxis"):
        expr = f"tnp.expand_dims({x.name}, {r.randrange(-nd - 1, nd + 1)})"
    elif c == "squeeze":
        ones = [i for i, d in enumerate(x.shape) if d == 1]
        if ones and r.random() < 0.5:
            expr = f"tnp.squeeze({x.name}, axis={r.choice(ones) - nd})"
        else:
            expr = f"tnp.squeeze({x.name})"
    elif c == "broadcast_to":
        shape = list(x.shape)
        if shape and r.random() < 0.5:
            i = r.randrange(len(shape))
            if shape[i] == 1:
                shape[i] = r.choice([2, 3])
        shape = [r.choice([1, 2, 3])] * r.randint(0, 1) + shape
        expr = f"tnp.broadcast_to({x.name}, {tuple(shape)!r})"
    elif c == "tile":
        reps = tuple(r.choice([1, 2]) for _ in range(r.randint(1, 2)))
        expr = f"tnp.tile({x.name}, {reps!r})" if x.size * 4 <= 300 else f"tnp.tile({x.name}, 1)"
    elif c == "repeat":
        if nd and r.random() < 0.4 and 0 not in x.shape:
            ax = r.randrange(nd)
            reps = [r.randint(0, 2) for _ in range(x.shape[ax])]
            expr = f"tnp.repeat({x.name}, {reps!r}, axis={ax})"
        else:
            ax = "None" if not nd or r.random() < 0.3 else str(r.randrange(-nd, nd))
            expr = f"tnp.repeat({x.name}, {r.choice([1, 2, 3])}, axis={ax})"
    elif c == "flip":
        ax = "None" if not nd or r.random() < 0.3 else str(r.randrange(-nd, nd))
        expr = f"tnp.flip({x.name}, axis={ax})"
    elif c == "roll":
        ax = "None" if not nd or r.random() < 0.3 else str(r.randrange(-nd, nd))
        expr = f"tnp.roll({x.name}, {r.randint(-3, 3)}, axis={ax})"
    else:
        expr = f"tnp.atleast_2d({x.name})"
    sc.emit(expr, x.lo, x.hi, [x])


def _rand_index(r, shape):
    """A random basic index (ints, slices with any step, None, ...)."""
    parts = []
    nd = len(shape)
    used_ellipsis = False
    for n in shape:
        c = r.random()
        if c < 0.2 and n > 0:
            parts.append(str(r.randrange(-n, n)))
        elif c < 0.6:
            step = r.choice([1, 1, 2, -1, -2, 3])
            start = r.choice([None, r.randint(-n - 1, n + 1)])
            stop = r.choice([None, r.randint(-n - 1, n + 1)])
            parts.append(f"{'' if start is None else start}:{'' if stop is None else stop}"
                         + (f":{step}" if step != 1 else ""))
        elif c < 0.7 and not used_ellipsis:
            parts.append("...")
            used_ellipsis = True
        else:
            parts.append(":")
        if r.random() < 0.1:
            parts.append("None")
    if used_ellipsis:  # an ellipsis stands for the axes that follow it
        i = parts.index("...")
        taken = sum(1 for p in parts if p not in ("None", "..."))
        if taken > nd:
            parts.pop(i)
    while parts and parts[-1] == ":" and r.random() < 0.7:
        parts.pop()
    if not parts:
        parts = ["..."]
    return ", ".join(parts)


@op(3.0, prims={"slice", "rev", "reshape"})
def op_slice(sc: Scope):
    r = sc.gen.r
    x = sc.pick(lambda v: v.shape != ()) or sc.float_val(shape=sc.gen.shape(2))
    if x.shape == ():
        return
    key = _rand_index(r, x.shape)
    sc.emit(f"{x.name}[{key}]", x.lo, x.hi, [x])


@op(3.0, prims={"concatenate", "pad", "slice", "reshape"})
def op_join(sc: Scope):
    r = sc.gen.r
    x = sc.pick(lambda v: v.shape != () and v.size <= 100) or \
        sc.float_val(shape=sc.gen.shape(2))
    if x.shape == ():
        x = sc.emit(f"tnp.atleast_1d({x.name})", x.lo, x.hi, [x])
    nd = len(x.shape)
    c = choose(sc.gen, ["concatenate", "stack", "hstack", "vstack", "split", "pad",
                        "pad_sides", "column_stack", "concat_none"],
               {"concatenate": "concatenate", "pad": "pad", "slice": "split"})
    kinds = {"f": "fi", "i": "ib", "b": "b"}[x.kind]
    if c in ("concatenate", "concat_none", "hstack", "vstack", "column_stack"):
        ax = r.randrange(nd)
        parts = [x]
        for _ in range(r.randint(1, 2)):
            shape = list(x.shape)
            shape[ax] = r.choice([0, 1, 2, 3]) if c == "concatenate" else shape[ax]
            kind = r.choice(kinds)
            other = sc.pick(lambda v, s=tuple(shape), k=kind: v.shape == s and v.kind == k)
            if other is None:
                dt = x.dtype if kind == x.kind else {"f": sc.gen.fdt, "i": np.dtype("int32"),
                                                     "b": np.dtype(bool)}[kind]
                other = sc.gen.new_input(tuple(shape), dt, -2, 2)
            parts.append(other)
        names = ", ".join(p.name for p in parts)
        lo, hi = min(p.lo for p in parts), max(p.hi for p in parts)
        if c == "concatenate":
            axs = ax - nd if r.random() < 0.3 else ax
            expr = f"tnp.concatenate([{names}], axis={axs})"
        elif c == "concat_none":
            expr = f"tnp.concatenate(({names}), axis=None)"
        else:
            expr = f"tnp.{c}(({names}))"
        sc.emit(expr, lo, hi, parts)
    elif c == "stack":
        other = sc.pick(lambda v: v.shape == x.shape and v.name != x.name and v.kind in kinds)
        if other is None:
            other = sc.gen.new_input(x.shape, x.dtype, -2, 2)
        expr = f"tnp.stack([{x.name}, {other.name}], axis={r.randrange(-nd - 1, nd + 1)})"
        sc.emit(expr, min(x.lo, other.lo), max(x.hi, other.hi), [x, other])
    elif c == "split":
        ax = r.randrange(nd)
        n = x.shape[ax]
        if r.random() < 0.5:
            pts = sorted(r.randint(-1, n + 1) for _ in range(r.randint(1, 2)))
            expr = f"tnp.split({x.name}, {pts!r}, axis={ax})"
        else:
            expr = f"tnp.array_split({x.name}, {r.randint(1, 3)}, axis={ax})"
        k = r.randrange(len(sc.evaluate(expr)))
        sc.emit(f"{expr}[{k}]", x.lo, x.hi, [x])
    elif c == "pad":
        widths = [(r.randint(0, 2), r.randint(0, 2)) for _ in range(nd)]
        if r.random() < 0.3:
            widths = r.randint(0, 2)
        val = r.uniform(-1, 1) if x.kind == "f" else r.randint(-1, 1)
        if x.kind == "b":
            val = r.choice([True, False])
        expr = f"tnp.pad({x.name}, {widths!r}, constant_values={val!r})"
        sc.emit(expr, min(x.lo, float(val)), max(x.hi, float(val)), [x])
    else:
        widths = [(r.randint(0, 2), r.randint(0, 2)) for _ in range(nd)]
        vals = [(r.randint(-2, 2), r.randint(-2, 2)) for _ in range(nd)]
        if x.kind == "b":
            vals = [(0, 1)] * nd
        expr = f"tnp.pad({x.name}, {widths!r}, constant_values={vals!r})"
        sc.emit(expr, min(x.lo, -2.0), max(x.hi, 2.0), [x])


@op(3.0, prims={"gather", "scatter_add", "select", "add", "lt"})
def op_gather(sc: Scope):
    r = sc.gen.r
    x = sc.pick(lambda v: v.shape != () and v.size > 0) or \
        sc.float_val(shape=tuple(max(d, 1) for d in sc.gen.shape(2)))
    if x.size == 0 or x.shape == ():
        return
    nd = len(x.shape)
    c = r.choice(["one", "axis", "two", "take", "take_along", "list", "scalar", "diag",
                  "diagonal", "einsum_diag", "trace"])
    idt = np.dtype(r.choice(["int64", "int64", "int32", "int16", "uint8"]))
    ishape = r.choice([(2,), (3,), (2, 2), (), (0,)])

    def index(n, shape=ishape, dtype=idt):
        lo = 0 if dtype.kind == "u" or r.random() < 0.4 else -n
        return sc.int_val(lo, n - 1, shape=shape, dtype=dtype)

    def subscript(key, idx):
        # NumPy's own __getitem__ cannot take a traced index: an array of an enclosing scope
        # (a NumPy array when f runs eagerly, or while the generator evaluates a body)
        # indexed by a body's value goes through tnp.take
        if any(i.depth > x.depth for i in idx):
            if len(idx) > 1:
                return None
            ax = key.count(":")
            return f"tnp.take({x.name}, {idx[0].name}, axis={ax})"
        return f"{x.name}[{key}]"

    if c == "one":
        i = index(x.shape[0])
        sc.emit(subscript(i.name, [i]), x.lo, x.hi, [x, i])
    elif c == "axis" and nd >= 2:
        ax = r.randrange(1, nd)
        i = index(x.shape[ax])
        key = ", ".join([":"] * ax + [i.name])
        sc.emit(subscript(key, [i]), x.lo, x.hi, [x, i])
    elif c == "two" and nd >= 2:
        i, j = index(x.shape[0]), index(x.shape[1], shape=r.choice([ishape, (1,), ()]))
        expr = subscript(f"{i.name}, {j.name}", [i, j])
        if expr is not None and _bshape(i.shape, j.shape) is not None:
            sc.emit(expr, x.lo, x.hi, [x, i, j])
    elif c == "take":
        ax = r.randrange(nd)
        i = index(x.shape[ax])
        sc.emit(f"tnp.take({x.name}, {i.name}, axis={ax - nd if r.random() < 0.3 else ax})",
                x.lo, x.hi, [x, i])
    elif c == "take_along":
        ax = r.randrange(nd)
        shape = list(x.shape)
        shape[ax] = r.choice([1, 2, 3])
        i = index(x.shape[ax], shape=tuple(shape), dtype=np.dtype("int64"))
        sc.emit(f"tnp.take_along_axis({x.name}, {i.name}, axis={ax})", x.lo, x.hi, [x, i])
    elif c == "list":
        n = x.shape[0]
        lst = [r.randrange(-n, n) for _ in range(r.randint(1, 3))]
        sc.emit(f"{x.name}[{lst!r}]", x.lo, x.hi, [x])
    elif c == "scalar":
        i = index(x.shape[0], shape=())
        sc.emit(subscript(i.name, [i]), x.lo, x.hi, [x, i])
    elif c == "diag":
        if nd == 1 and x.size <= 8:
            sc.emit(f"tnp.diag({x.name}, k={r.randint(-1, 1)})", min(x.lo, 0), max(x.hi, 0),
                    [x])
        elif nd == 2:
            sc.emit(f"tnp.diag({x.name})", x.lo, x.hi, [x])
    elif c in ("diagonal", "trace") and nd >= 2:
        off = r.randint(-1, 1)
        a1, a2 = r.sample(range(nd), 2)
        if c == "diagonal":
            sc.emit(f"tnp.diagonal({x.name}, {off}, {a1}, {a2})", x.lo, x.hi, [x])
        else:
            n = min(x.shape[a1], x.shape[a2])
            sc.emit(f"tnp.trace({x.name}, {off}, {a1}, {a2})", min(n * x.lo, 0),
                    max(n * x.hi, 0), [x])
    elif c == "einsum_diag" and nd == 2 and x.shape[0] == x.shape[1]:
        sc.emit(f"tnp.einsum('ii->i', {x.name})", x.lo, x.hi, [x])


# =============================================================================================
# Products
# =============================================================================================

@op(4.0, prims={"dot_general"})
def op_dot(sc: Scope):
    r = sc.gen.r
    gen = sc.gen
    d = gen.dims + ([0] if gen.zero_dims and r.random() < 0.3 else [])
    m, k, n, b = (r.choice(d) for _ in range(4))
    form = r.choice(["vv", "mv", "vm", "mm", "bmm", "bmm_bcast", "dot", "dot0", "vdot",
                     "inner", "outer", "tensordot", "einsum", "raw", "int"])
    dt = gen.float_dtype()
    shapes = {"vv": ((k,), (k,)), "mv": ((m, k), (k,)), "vm": ((k,), (k, n)),
              "mm": ((m, k), (k, n)), "bmm": ((b, m, k), (b, k, n)),
              "bmm_bcast": ((1, m, k), (b, k, n)), "dot": ((m, k), (k,)),
              "dot0": ((), (m, k)), "vdot": ((m, k), (m, k)), "inner": ((m, k), (n, k)),
              "outer": ((m,), (n,)), "tensordot": ((m, k, n), (k, n)),
              "einsum": ((m, k), (k, n)), "raw": ((b, m, k), (k, b)), "int": ((m, k), (k, n))}
    sa, sb = shapes[form]
    if form == "int":
        idt = np.dtype(r.choice(["int64", "int32"]))
        a, bv = sc.int_val(-3, 3, shape=sa, dtype=idt), sc.int_val(-3, 3, shape=sb, dtype=idt)
        lo, hi = -9 * k, 9 * k
        sc.emit(f"{a.name} @ {bv.name}", lo, hi, [a, bv])
        return

    def operand(shape):
        v = sc.pick(lambda v: v.kind == "f" and v.shape == shape and v.finite)
        if v is None:
            v = gen.new_input(shape, dt, -1.5, 1.5)
        return sc.squash(v, 3.0)

    a, bv = operand(sa), operand(sb)
    kk = max(k, 1) * (n if form in ("tensordot", "vdot") else 1) * (
        m if form == "vdot" else 1)
    mg = a.mag * bv.mag * kk
    if form == "dot0":
        expr = f"tnp.dot({a.name}, {bv.name})"
    elif form in ("vv", "mv", "vm", "mm", "bmm", "bmm_bcast"):
        expr = r.choice([f"{a.name} @ {bv.name}", f"tnp.matmul({a.name}, {bv.name})"]
                        ) if form != "vv" else r.choice([f"{a.name} @ {bv.name}",
                                                        f"tnp.dot({a.name}, {bv.name})"])
    elif form == "dot":
        # (a NumPy array's own .dot cannot take a traced operand)
        expr = f"{a.name}.dot({bv.name})" if a.depth >= bv.depth and r.random() < 0.5 \
            and not a.py \
            else f"tnp.dot({a.name}, {bv.name})"
    elif form in ("vdot", "inner", "outer"):
        expr = f"tnp.{form}({a.name}, {bv.name})"
    elif form == "tensordot":
        expr = r.choice([f"tnp.tensordot({a.name}, {bv.name}, axes=2)",
                         f"tnp.tensordot({a.name}, {bv.name}, axes=([1, 2], [0, 1]))",
                         f"tnp.tensordot({a.name}, {bv.name}, axes=([-1], [1]))"])
        if "[-1]" in expr:
            mg = a.mag * bv.mag * max(n, 1)
    elif form == "einsum":
        expr = r.choice([f"tnp.einsum('ij,jk->ik', {a.name}, {bv.name})",
                         f"tnp.einsum('ij,jk->ki', {a.name}, {bv.name})",
                         f"tnp.einsum('ij,jk', {a.name}, {bv.name})",
                         f"tnp.einsum('ij,jk->j', {a.name}, {bv.name})",
                         f"tnp.einsum('ij,jk->', {a.name}, {bv.name})"])
        mg = a.mag * bv.mag * max(k, 1) * max(m, 1) * max(n, 1)
    else:  # raw dot_general: batch dims in transposed positions, or nothing contracted
        if bv.dtype != a.dtype:  # (the primitive takes one dtype)
            bv = sc.emit(f"tnp.astype({bv.name}, np.{a.dtype.name})", bv.lo, bv.hi, [bv])
        c = r.choice(["batch", "none", "scalar"])
        if c == "batch":
            expr = (f"la.dot_general_p.bind({a.name}, {bv.name}, dimension_numbers="
                    f"(((2,), (0,)), ((0,), (1,))))")
        elif c == "none":
            expr = (f"la.dot_general_p.bind({a.name}, {bv.name}, dimension_numbers="
                    f"(((), ()), ((), ())))")
            mg = a.mag * bv.mag
        else:
            s = sc.float_val(shape=())
            if s.dtype != a.dtype:
                s = sc.emit(f"tnp.astype({s.name}, np.{a.dtype.name})", s.lo, s.hi, [s])
            s = sc.squash(s, 3.0)
            expr = (f"la.dot_general_p.bind({s.name}, {a.name}, dimension_numbers="
                    f"(((), ()), ((), ())))")
            sc.emit(expr, -s.mag * a.mag, s.mag * a.mag, [s, a])
            return
    sc.emit(expr, -mg, mg, [a, bv])


# =============================================================================================
# Control flow
# =============================================================================================

def _carry_update(sc: Scope, c: Val, lo: float, hi: float) -> str:
    """An expression for the next value of carry `c` that stays inside [lo, hi]: a smooth
    squash of a mix of `c` and another body value."""
    r = sc.gen.r
    w = sc.pick(lambda v: v.name != c.name and v.kind in "fib" and v.finite) or c
    e, _, _ = sc.fit(w, c.shape, c.dtype)
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    a = r.uniform(0.2, 0.8)
    b = r.uniform(0.1, 0.5)
    inner = f"{_fmt(a)} * ({c.name} - {_fmt(mid)}) / {_fmt(half)} + {_fmt(b)} * {e}"
    squash = r.choice(["tnp.tanh({})", "tnp.sin({})", "(2.0 * nn.sigmoid({}) - 1.0)"])
    new = f"{_fmt(mid)} + {_fmt(half * 0.95)} * {squash.format(inner)}"
    return f"tnp.astype({new}, np.{c.dtype.name})"


def _carry_domain(v: Val) -> tuple[float, float]:
    lo, hi = v.lo, v.hi
    mid, half = (lo + hi) / 2, max((hi - lo) / 2, 0.5)
    half = min(half, 10.0) if abs(mid) < 100 else half
    return mid - half * 1.05 - 0.01, mid + half * 1.05 + 0.01


def _pick_carries(sc: Scope, count: int) -> list[Val]:
    r = sc.gen.r
    out = []
    for _ in range(count):
        v = sc.pick(lambda v: v.kind == "f" and v.finite and v.size <= 24 and v.mag < 50
                    and v not in out)
        if v is None or r.random() < 0.2:
            v = sc.gen.new_input(sc.gen.shape(r.choice([0, 1, 2])), sc.gen.float_dtype(),
                                 -1.0, 1.0)
        out.append(v)
    return out


def _body_ops(gen: Gen, body: Scope) -> None:
    gen.run_ops(body, gen.r.randint(1, 4) if not gen.small else gen.r.randint(1, 2))


def _emit_block(sc: Scope, def_lines: list[str], call: str, outs: list[tuple[str, Val | None]],
                uses: set, fd_ok=True) -> list[Val]:
    """Run `def_lines` + `targets = call` in scope `sc` (eagerly), record the statement and
    the values it defines. `outs`: (name, bound template Val or None)."""
    src = "\n".join(def_lines + [call])
    sc.run(src)
    # what the block reads (initial carries, closed-over values) taints what it defines
    read = [sc.lookup(u) for u in uses]
    fd_ok = fd_ok and all(v.fd_ok for v in read if v is not None)
    all_finite = all(v.finite for v in read if v is not None)
    lowp = sc.child_lowp or any(v.lowp for v in read if v is not None)
    jumpy = sc.child_jumpy or any(v.jumpy for v in read if v is not None)
    sc.child_lowp = sc.child_jumpy = False
    defined = []
    for name, tmpl in outs:
        arr = np.asarray(sc.ns[name])
        lo, hi = (tmpl.lo, tmpl.hi) if tmpl is not None else (-INF, INF)
        fin = (tmpl.finite if tmpl is not None else True) and all_finite
        ok = fd_ok and (tmpl.fd_ok if tmpl is not None else True)
        v = sc._val(name, arr, lo, hi, ok, fin, lowp,
                    jumpy or (tmpl.jumpy if tmpl is not None else False))
        sc.vals.append(v)
        defined.append(v)
    sc.stmts.append(Stmt(def_lines + [call], [n for n, _ in outs], set(uses)))
    return defined


def _free_uses(body: Scope) -> set:
    """Names a body reads from enclosing scopes."""
    defined = set(body.params)
    used = set()
    for s in body.stmts:
        used |= s.uses - defined
        defined |= set(s.defines)
    return used | (body.extra_uses - defined)


def _indent(lines, n=4):
    return [" " * n + ln if ln else ln for ln in lines]


def _body_lines(body: Scope) -> list[str]:
    out = []
    for s in body.stmts:
        out += s.lines
    return out


def _signature(gen: Gen, patterns: list[str]) -> tuple[str, list[str]]:
    """Parameters for a def whose arguments are names or tuple patterns (unpacked in the
    body: Python 3 has no tuple parameters)."""
    names, unpack = [], []
    for pat in patterns:
        if pat.startswith("("):
            name = gen.fresh("a")
            names.append(name)
            unpack.append(f"{pat} = {name}")
        else:
            names.append(pat)
    return ", ".join(names), unpack


@op(2.5, prims={"scan", "control"})
def op_scan(sc: Scope):
    gen, r = sc.gen, sc.gen.r
    length = r.choice([1, 2, 3, 4, 3]) if r.random() > 0.05 else 0
    carries = _pick_carries(sc, r.choice([1, 1, 2]))
    doms = [_carry_domain(c) for c in carries]
    n_xs = r.choice([0, 1, 1, 2])
    xs = []
    for _ in range(n_xs):
        v = sc.pick(lambda v: v.shape[:1] == (length,) and v.finite and v.size <= 40
                    and v.kind in "fi")
        if v is None or r.random() < 0.3:
            v = gen.new_input((length,) + gen.shape(r.choice([0, 1])), gen.float_dtype(),
                              -1.5, 1.5)
        xs.append(v)
    reverse = r.random() < 0.3
    x_reps = [np.asarray(sc.ns[x.name])[0] if length else
              np.zeros(x.shape[1:], x.dtype) for x in xs]
    spec = [(sc.ns[c.name], lo, hi) for c, (lo, hi) in zip(carries, doms)]
    spec += [(rep, x.lo, x.hi) for rep, x in zip(x_reps, xs)]
    body, params = sc.child(spec)
    cps, xps = params[:len(carries)], params[len(carries):]
    _body_ops(gen, body)
    new = [_carry_update(body, c, lo, hi) for c, (lo, hi) in zip(cps, doms)]
    ys = [v for v in body.vals[len(params):] if v.size <= 24]
    ys = r.sample(ys, min(len(ys), r.choice([0, 1, 2])))
    body.close()
    fname = gen.fresh("body")
    tuple_carry = len(carries) > 1 or r.random() < 0.3
    cpat = "(" + ", ".join(c.name for c in cps) + ("," if len(cps) == 1 else "") + ")" \
        if tuple_carry else cps[0].name
    if not xs:
        xpat, xarg = "_", "None"
    elif len(xs) == 1 and r.random() < 0.6:
        xpat, xarg = xps[0].name, xs[0].name
    else:
        xpat = "(" + ", ".join(x.name for x in xps) + ("," if len(xps) == 1 else "") + ")"
        xarg = "(" + ", ".join(x.name for x in xs) + ("," if len(xs) == 1 else "") + ")"
    new_c = "(" + ", ".join(new) + ("," if len(new) == 1 else "") + ")" if tuple_carry \
        else new[0]
    new_y = "None" if not ys else ("(" + ", ".join(y.name for y in ys) + ",)")
    head, unpack = _signature(gen, [cpat, xpat])
    lines = [f"def {fname}({head}):"] + _indent(unpack + _body_lines(body)) + \
        _indent([f"return {new_c}, {new_y}"])
    out_c = [gen.fresh("v") for _ in carries]
    out_y = [gen.fresh("v") for _ in ys]
    tgt_c = "(" + ", ".join(out_c) + ("," if len(out_c) == 1 else "") + ")" if tuple_carry \
        else out_c[0]
    tgt_y = "_" if not ys else "(" + ", ".join(out_y) + ",)"
    init = "(" + ", ".join(c.name for c in carries) + ("," if len(carries) == 1 else "") + ")" \
        if tuple_carry else carries[0].name
    kw = ""
    if not xs:
        kw += f", length={length}"
    if reverse:
        kw += ", reverse=True"
    call = f"{tgt_c}, {tgt_y} = tj.scan({fname}, {init}, {xarg}{kw})"
    fd_ok = all(v.fd_ok for v in body.vals)
    outs = [(n, Val("", (), F64, lo, hi)) for n, (lo, hi) in zip(out_c, doms)]
    outs += [(n, y) for n, y in zip(out_y, ys)]
    uses = _free_uses(body) | {c.name for c in carries} | {x.name for x in xs}
    _emit_block(sc, lines, call, outs, uses, fd_ok=fd_ok)


@op(1.5, prims={"scan", "gather", "control"})
def op_fori(sc: Scope):
    """fori_loop with static bounds (a scan; the counter indexes a closed-over array) or
    traced bounds (a while loop)."""
    gen, r = sc.gen, sc.gen.r
    # (an unbounded loop inside a body has no reverse mode: mostly top-level ones)
    traced = r.random() < (0.08 if sc.depth else 0.3) and not (sc.depth and gen.want)
    lo_b, n = r.randint(-1, 1), r.randint(0, 4)
    carries = _pick_carries(sc, r.choice([1, 2]))
    doms = [_carry_domain(c) for c in carries]
    size = max(n + lo_b, 1)  # index lo_b = -1 wraps around to the last row
    table = sc.pick(lambda v: v.kind == "f" and v.shape[:1] == (size,) and v.finite) \
        if not traced and n else None
    spec = [(np.int64(lo_b if n else 0), lo_b, lo_b + n)] + [
        (sc.ns[c.name], lo, hi) for c, (lo, hi) in zip(carries, doms)]
    body, params = sc.child(spec)
    ip, cps = params[0], params[1:]
    if table is not None:  # a NumPy array (eager top level) is indexed through tnp.take
        expr = f"tnp.take({table.name}, {ip.name}, axis=0)"
        body.emit(expr, table.lo, table.hi, [table, ip])
    else:
        k = _fmt(r.uniform(-0.3, 0.3))
        body.emit(f"tnp.astype({ip.name}, np.{cps[0].dtype.name}) * {k}",
                  -2.0 * (abs(lo_b) + n), 2.0 * (abs(lo_b) + n), [ip, cps[0]])
    _body_ops(gen, body)
    new = [_carry_update(body, c, lo, hi) for c, (lo, hi) in zip(cps, doms)]
    body.close()
    fname = gen.fresh("body")
    tup = len(carries) > 1
    cpat = "(" + ", ".join(c.name for c in cps) + ")" if tup else cps[0].name
    head, unpack = _signature(gen, [ip.name, cpat])
    lines = [f"def {fname}({head}):"] + _indent(unpack + _body_lines(body)) + \
        _indent([f"return {'(' + ', '.join(new) + ')' if tup else new[0]}"])
    outs = [gen.fresh("v") for _ in carries]
    init = "(" + ", ".join(c.name for c in carries) + ")" if tup else carries[0].name
    tgt = "(" + ", ".join(outs) + ")" if tup else outs[0]
    uses = _free_uses(body) | {c.name for c in carries}
    if traced:
        bound = gen.new_input((), np.dtype(r.choice(["int64", "int32"])), 0, n)
        upper = bound.name
        uses.add(bound.name)
        gen.flags.add("unbounded_while" if sc.depth == 0 else "nested_unbounded_while")
    else:
        upper = str(lo_b + n)
    call = f"{tgt} = tj.fori_loop({lo_b}, {upper}, {fname}, {init})"
    fd_ok = all(v.fd_ok for v in body.vals)
    _emit_block(sc, lines, call, [(o, Val("", (), F64, lo, hi)) for o, (lo, hi) in
                                  zip(outs, doms)], uses, fd_ok)


@op(2.0, prims={"while_loop", "while_record", "replay", "call", "control"})
def op_while(sc: Scope):
    gen, r = sc.gen, sc.gen.r
    carries = _pick_carries(sc, r.choice([1, 1, 2]))
    kind = r.choice(["counter", "counter", "threshold"])
    bounded = r.random() < (0.85 if sc.depth else 0.4)
    if gen.focus in ("while_record", "replay", "call"):
        bounded = gen.focus == "call"
    if sc.depth and gen.want:  # adaptive runs: a nested unbounded loop would keep
        bounded = True         # reverse mode (while_record, replay, call) from the program
    k = r.randint(0, 4)
    doms = [_carry_domain(c) for c in carries]
    if kind == "threshold":  # the first carry grows each step until its sum passes `thr`
        lo, hi = doms[0]
        doms[0] = (lo, hi + 0.35 * (k + 1))
    cnt_dt = r.choice(["int64", "int32"])
    spec = [(np.asarray(0, cnt_dt)[()], 0, k + 1)] + [
        (sc.ns[c.name], lo, hi) for c, (lo, hi) in zip(carries, doms)]
    body, params = sc.child(spec)
    ip, cps = params[0], params[1:]
    _body_ops(gen, body)
    new = []
    for j, (c, (lo, hi)) in enumerate(zip(cps, doms)):
        if kind == "threshold" and j == 0:
            w = body.pick(lambda v: v.kind == "f" and v.finite) or c
            e, _, _ = body.fit(w, c.shape, c.dtype)
            new.append(f"{c.name} + tnp.astype(0.2 + 0.1 * tnp.tanh({e}), np.{c.dtype.name})")
        else:
            new.append(_carry_update(body, c, lo, hi))
    body.close()
    state = [ip] + cps
    fname, cname = gen.fresh("body"), gen.fresh("cond")
    sname = gen.fresh("s")
    limit = str(k)
    uses = _free_uses(body) | {c.name for c in carries}
    if r.random() < 0.3:
        lim = gen.new_input((), np.dtype(cnt_dt), 0, k)
        limit = lim.name
        uses.add(lim.name)
    cond = f"{sname}[0] < {limit}"
    if kind == "threshold":
        c0 = carries[0]
        thr = float(np.sum(np.asarray(sc.ns[c0.name], np.float64))) + 0.3 * max(c0.size, 1) * \
            r.uniform(0.5, 3.5)
        # the counter bounds the loop even where the sum does not grow (empty carries)
        form = r.choice(["({s}[0] < {k}) & (tnp.sum({s}[1]) < {t})",
                         "tnp.logical_and(tnp.sum({s}[1]) < {t}, {s}[0] <= {k})"])
        cond = form.format(s=sname, k=k + 2, t=_fmt(thr))
    lines = [f"def {cname}({sname}):", f"    return {cond}",
             f"def {fname}({sname}):",
             "    " + ", ".join(p.name for p in state) + f" = {sname}"] + \
        _indent(_body_lines(body)) + \
        _indent([f"return ({ip.name} + 1, " + ", ".join(new) + ")"])
    outs = [gen.fresh("v") for _ in state]
    init = f"(np.{cnt_dt}(0), " + ", ".join(c.name for c in carries) + ")"
    kw = f", max_iterations={r.randint(0, k + 1)}" if bounded else ""
    call = f"{', '.join(outs)} = tj.while_loop({cname}, {fname}, {init}{kw})"
    if not bounded:
        gen.flags.add("unbounded_while" if sc.depth == 0 else "nested_unbounded_while")
    fd_ok = all(v.fd_ok for v in body.vals)
    tmpls = [Val("", (), F64, 0, k + 2)] + [Val("", (), F64, lo, hi) for lo, hi in doms]
    if kind == "threshold":
        tmpls = [Val("", (), F64, 0, k + 2, fd_ok=False)] + tmpls[1:]
        for t in tmpls:
            t.jumpy = True
    _emit_block(sc, lines, call, list(zip(outs, tmpls)), uses, fd_ok)


@op(2.5, prims={"cond", "call", "control"})
def op_cond(sc: Scope):
    gen, r = sc.gen, sc.gen.r
    n_ops = r.choice([1, 2, 2, 3])
    operands = []
    for _ in range(n_ops):
        v = sc.pick(lambda v: v.size <= 24 and v.finite and v not in operands)
        if v is None:
            v = sc.float_val()
        operands.append(v)
    if not any(o.kind == "f" for o in operands):
        operands.append(sc.float_val())
    n_br = 2 if r.random() < 0.7 else r.choice([1, 3])
    pk = r.random()
    uses = {o.name for o in operands}
    if n_br == 2 and pk < 0.45:
        x = sc.float_val()
        pred = sc.emit(f"tnp.sum({x.name}) > {_fmt(r.uniform(-1, 1))}", 0, 1, [x], jumpy=True)
        pred_src = pred.name
        uses.add(pred.name)
    elif n_br == 2 and pk < 0.6:
        i = sc.int_val(-2, 2, shape=())
        pred_src = i.name  # an integer predicate: nonzero is true
        uses.add(i.name)
    elif n_br == 2 and pk < 0.7:
        pred_src = r.choice(["True", "False"])  # concrete: the optimizer keeps one branch
    else:
        i = sc.int_val(-1, n_br, shape=(), dtype=np.dtype(r.choice(["int64", "int32"])))
        pred_src = i.name
        uses.add(i.name)
    # output slots: the operands' types
    slots = operands[:]
    branches = []
    for _ in range(n_br):
        body, params = sc.child([(sc.ns[o.name], o.lo, o.hi) for o in operands])
        _body_ops(gen, body)
        rets = []
        for s, p in zip(slots, params):
            cands = [v for v in body.vals if v.kind == s.kind and v.finite]
            w = r.choice(cands) if cands and r.random() < 0.8 else p
            e, lo, hi = body.fit(w, s.shape, s.dtype)
            rets.append((e, lo, hi, w))
        body.close()
        branches.append((body, params, rets))
    lines = []
    names = []
    for body, params, rets in branches:
        bname = gen.fresh("branch")
        names.append(bname)
        lines += [f"def {bname}({', '.join(p.name for p in params)}):"] + \
            _indent(_body_lines(body)) + \
            _indent(["return (" + ", ".join(e for e, _, _, _ in rets) + ",)"])
        uses |= _free_uses(body)
    outs = [gen.fresh("v") for _ in slots]
    args = ", ".join(o.name for o in operands)
    if n_br == 2 and r.random() < 0.75 and not pred_src.startswith("i") or n_br == 2 and \
            pred_src in ("True", "False"):
        call = f"{', '.join(outs)}, = tj.cond({pred_src}, {names[1]}, {names[0]}, {args})"
    else:
        call = f"{', '.join(outs)}, = tj.switch({pred_src}, [{', '.join(names)}], {args})"
    tmpls = []
    for j in range(len(slots)):
        los = [b[2][j][1] for b in branches]
        his = [b[2][j][2] for b in branches]
        fd = all(b[2][j][3].fd_ok for b in branches)
        tmpls.append(Val("", (), F64, min(los), max(his), fd_ok=fd))
    fd_ok = all(v.fd_ok for b in branches for v in b[0].vals)
    _emit_block(sc, lines, call, list(zip(outs, tmpls)), uses, fd_ok)


@op(1.0, prims={"checkpoint", "control"})
def op_checkpoint(sc: Scope):
    gen, r = sc.gen, sc.gen.r
    args = [sc.float_val() for _ in range(r.choice([1, 2]))]
    body, params = sc.child([(sc.ns[a.name], a.lo, a.hi) for a in args])
    _body_ops(gen, body)
    rets = [v for v in body.vals[len(params):] if v.finite] or params[:1]
    rets = r.sample(rets, min(len(rets), r.choice([1, 2])))
    body.close()
    fname = gen.fresh("ck")
    lines = [f"def {fname}({', '.join(p.name for p in params)}):"] + \
        _indent(_body_lines(body)) + _indent([f"return ({', '.join(v.name for v in rets)},)"])
    outs = [gen.fresh("v") for _ in rets]
    call = f"{', '.join(outs)}, = tj.checkpoint({fname})({', '.join(a.name for a in args)})"
    uses = _free_uses(body) | {a.name for a in args}
    fd_ok = all(v.fd_ok for v in body.vals)
    _emit_block(sc, lines, call, list(zip(outs, rets)), uses, fd_ok)


# =============================================================================================
# Programs
# =============================================================================================

@dataclass
class Program:
    seed: int
    inputs: list
    stmts: list
    outputs: list
    fdt: np.dtype
    flags: set
    small: bool
    keep: list | None = None  # output names kept by a reduction (None: all)
    cut: frozenset = frozenset()  # statements whose values a reduction made inputs
    _fns: dict = field(default_factory=dict, repr=False)

    def kept_outputs(self) -> list[Val]:
        if self.keep is None:
            return list(self.outputs)
        return [v for v in self.outputs if v.name in self.keep]

    def reduced(self, keep=None, cut=None) -> Program:
        return Program(self.seed, self.inputs, self.stmts, self.outputs, self.fdt, self.flags,
                       self.small, list(keep) if keep is not None else self.keep,
                       frozenset(cut) if cut is not None else self.cut)

    def _needed(self):
        """Statements and inputs the kept outputs depend on (a cut statement's values are
        inputs instead, drawn from the bounds the generator knew for them)."""
        if "needed" in self._fns:
            return self._fns["needed"]
        need = {v.name for v in self.kept_outputs()}
        stmts, cut_inputs = [], []
        by_name = {v.name: v for v in self.outputs}
        for k in range(len(self.stmts) - 1, -1, -1):
            s = self.stmts[k]
            if need & set(s.defines):
                if k in self.cut:
                    cut_inputs = [_input_like(by_name[d]) for d in s.defines if d in need] + \
                        cut_inputs
                    continue
                stmts.append(s)
                need |= s.uses
        stmts.reverse()
        inputs = [i for i in self.inputs if i.name in need] + cut_inputs
        self._fns["needed"] = (stmts, inputs)
        return stmts, inputs

    def cuttable(self) -> list[int]:
        """Statements of the kept outputs' chain that a reduction may replace by inputs."""
        stmts, _ = self._needed()
        by_name = {v.name: v for v in self.outputs}
        return [self.stmts.index(s) for s in stmts
                if all(by_name[d].finite for d in s.defines if d in by_name)]

    def coarse_fd(self) -> bool:
        """Finite differences take float32 steps (a float32 argument is differentiated)."""
        return any(i.dtype == F32 for i in self.arg_inputs())

    def fd_term(self, v: Val) -> bool:
        """Is `v`'s derivative comparable with finite differences?"""
        return v.kind == "f" and v.finite and v.fd_ok and not (
            v.jumpy and (v.lowp or self.coarse_fd()))

    def loss_terms(self, fd_only: bool) -> list[Val]:
        return [v for v in self.kept_outputs() if v.kind == "f" and v.finite
                and (not fd_only or self.fd_term(v))]

    def source(self) -> str:
        stmts, inputs = self._needed()
        params = ", ".join(i.name for i in inputs)
        lines = [f"def f({params}):"]
        for s in stmts:
            lines += _indent(s.lines)
        outs = self.kept_outputs()
        lines.append("    return {" + ", ".join(f"{v.name!r}: {v.name}" for v in outs) + "}")
        lines.append("")
        lines.append("")
        for label, fd_only in (("loss", False), ("loss_fd", True)):
            terms = self.loss_terms(fd_only)
            lines.append(f"def {label}({params}):")
            lines.append(f"    out = f({params})")
            parts = [f"tnp.sum(tnp.astype(out[{v.name!r}], np.float64) * "
                     f"weight({zlib.crc32(v.name.encode()) % 1000}, {v.shape!r}))"
                     for v in terms]
            lines.append("    return " + (" + ".join(parts) if parts else "0.0 * 0.0"))
            lines.append("")
            lines.append("")
        lines.append("def make_args():")
        lines.append("    return [" + ", ".join(i.expr() for i in inputs) + "]")
        return "\n".join(lines) + "\n"

    def namespace(self) -> dict:
        if "ns" not in self._fns:
            ns = dict(BASE_NS)
            exec(compile(self.source(), f"<program {self.seed}>", "exec"), ns)
            self._fns["ns"] = ns
        return self._fns["ns"]

    def args(self) -> list:
        return self.namespace()["make_args"]()

    def arg_inputs(self) -> list[Input]:
        return self._needed()[1]

    def argnums(self) -> tuple:
        return tuple(k for k, i in enumerate(self.arg_inputs()) if i.differentiable)

    def describe_args(self) -> str:
        return ", ".join(f"{i.name}: {i.dtype.name}{list(i.shape)}"
                         + (f" ({i.form})" if i.form != "array" else "")
                         + (f" [{i.layout}]" if i.layout != "C" else "")
                         for i in self.arg_inputs())


def program_from(inputs, exprs, seed: int = 0) -> Program:
    """A program of given statements: `inputs` are (shape, dtype, lo, hi) of arguments
    x0, x1, ...; `exprs` are expressions of them and of earlier results v0, v1, ... (each an
    output). For tests of the checks themselves."""
    gen = Gen(seed)
    gen.inputs.clear()
    for k, (shape, dtype, lo, hi) in enumerate(inputs):
        gen._count = itertools.count(k)
        v = gen.new_input(tuple(shape), dtype, lo, hi, form="array", layout="C")
        assert v.name == f"x{k}", v.name
    top = Scope(gen, None, dict(BASE_NS), 0)
    for i in gen.inputs:
        top.ns[i.name] = eval(i.expr(), BASE_NS)
    top.vals = list(gen.top.vals)
    for k, e in enumerate(exprs):
        gen._count = itertools.count(k)
        uses = set(re.findall(r"\b[xv]\d+\b", e))
        top.emit(e, INF, -INF, uses)
    outs = [v for v in top.vals if v.name.startswith("v")]
    return Program(seed, gen.inputs, top.stmts, outs, F64, set(), False)


def _input_like(v: Val) -> Input:
    """An input standing in for value `v` (same type, entries inside v's bound)."""
    if v.kind == "f":
        lo, hi = max(v.lo, -1e3), min(v.hi, 1e3)
    elif v.kind == "b":
        lo, hi = 0, 1
    else:
        lo, hi = max(v.lo, -100), min(v.hi, 100)
    if lo > hi:
        lo, hi = hi, lo
    return Input(v.name, v.shape, v.dtype, float(lo), float(hi), "array", "C",
                 zlib.crc32(v.name.encode()))


def generate(seed: int, small: bool = False, want=frozenset()) -> Program:
    """One random program (deterministic in `seed`)."""
    return Gen(seed, small, want).build()


# =============================================================================================
# Coverage
# =============================================================================================

def all_primitives() -> set[str]:
    """Every `Primitive` defined in `tracejit/primitives/` (by introspection)."""
    import importlib
    import pkgutil

    import tracejit.primitives as pkg
    names = set()
    for m in pkgutil.iter_modules(pkg.__path__):
        mod = importlib.import_module(f"tracejit.primitives.{m.name}")
        names |= {v.name for v in vars(mod).values() if isinstance(v, Primitive)}
    return names


def primitives_in(ir, into: set | None = None) -> set[str]:
    """Names of the primitives an IR's equations use, nested bodies included."""
    from tracejit.ir import IR
    into = set() if into is None else into
    for e in ir.eqns:
        into.add(e.prim.name)
        for val in e.params.values():
            for sub in (val if isinstance(val, (tuple, list)) else (val,)):
                if isinstance(sub, IR):
                    primitives_in(sub, into)
    return into


# =============================================================================================
# Comparison helpers
# =============================================================================================

RTOL = {F64: 1e-12, F32: 2e-5}        # compiled vs interpreted (and eager)
GRAD_RTOL = {F64: 1e-10, F32: 2e-4}    # compiled vs interpreted derivatives
FD_H = {F64: 1e-5, F32: 1e-2}
FD_RTOL = {F64: 2e-5, F32: 3e-2}


class Mismatch(AssertionError):
    """A check failed; `keys` names the outputs involved (for reduction)."""

    def __init__(self, msg, keys=()):
        super().__init__(msg)
        self.keys = list(keys)


def _leaves(x, path="out"):
    if isinstance(x, dict):
        for k in sorted(x):
            yield from _leaves(x[k], f"{path}[{k!r}]")
    elif isinstance(x, (tuple, list)):
        for k, e in enumerate(x):
            yield from _leaves(e, f"{path}[{k}]")
    else:
        yield path, x


def compare(got, want, rtol, scales=None, what="") -> None:
    """Same structure, dtypes, shapes; ints/bools equal; floats within rtol (absolute floor
    rtol * scale, scale = max(|want|, the value's bound)); NaN/inf in the same places."""
    gl, wl = list(_leaves(got)), list(_leaves(want))
    if [p for p, _ in gl] != [p for p, _ in wl]:
        raise Mismatch(f"{what}: structure {[p for p, _ in gl]} != {[p for p, _ in wl]}")
    bad = []
    rtols = rtol if isinstance(rtol, dict) else {}
    default = max(rtols.values(), default=1e-12) if isinstance(rtol, dict) else rtol
    for (path, a), (_, e) in zip(gl, wl):
        a, e = np.asarray(a), np.asarray(e)
        names = re.findall(r"\['([^']+)'\]", path)
        key = names[-1] if names else path
        rtol = rtols.get(key, default)
        if a.dtype != e.dtype or a.shape != e.shape:
            bad.append((key, f"{path}: {a.dtype}{list(a.shape)}, expected "
                             f"{e.dtype}{list(e.shape)}"))
            continue
        if e.dtype.kind in "biu":
            if not np.array_equal(a, e):
                i = np.argwhere(a != e)[0] if a.ndim else ()
                bad.append((key, f"{path}: {a[tuple(i)]!r} != {e[tuple(i)]!r} at {tuple(i)}"))
            continue
        fa, fe = np.isfinite(a), np.isfinite(e)
        if not np.array_equal(fa, fe) or not np.array_equal(a[~fe], e[~fe], equal_nan=True):
            bad.append((key, f"{path}: non-finite entries differ:\n  got  {a!r}\n  want {e!r}"))
            continue
        scale = float(np.max(np.abs(e[fe]))) if fe.any() else 0.0
        if scales is not None and key in scales and math.isfinite(scales[key]):
            scale = max(scale, min(scales[key], 1e3 * max(scale, 1e-300)))
        with np.errstate(all="ignore"):
            err = np.abs(a[fe].astype(np.float64) - e[fe]) - rtol * np.abs(e[fe].astype(
                np.float64)) - rtol * scale
        if err.size and err.max() > 0:
            k = int(np.argmax(err))
            bad.append((key, f"{path}: {a[fe].ravel()[k]!r} != {e[fe].ravel()[k]!r} "
                             f"(rtol {rtol}, scale {scale:.3g})"))
    if bad:
        raise Mismatch(f"{what}:\n  " + "\n  ".join(m for _, m in bad[:6]),
                       [k for k, _ in bad])


def _float_arg(x) -> bool:
    return np.asarray(x).dtype.kind == "f"


def _perturb(args, argnums, dirs, h):
    """args with args[k] += h * dirs[k] (in the argument's dtype), and the realized steps."""
    plus, minus, steps = list(args), list(args), []
    for k, d in zip(argnums, dirs):
        x = args[k]
        if isinstance(x, float):
            plus[k], minus[k] = x + h * float(d), x - h * float(d)
            steps.append(np.float64((plus[k] - minus[k]) / 2))
            continue
        xa = np.asarray(x)
        p = (xa.astype(np.float64) + h * d).astype(xa.dtype)
        m = (xa.astype(np.float64) - h * d).astype(xa.dtype)
        if xa.ndim == 0 and not isinstance(x, np.ndarray):
            p, m = p[()], m[()]
        plus[k], minus[k] = p, m
        steps.append((np.asarray(p, np.float64) - np.asarray(m, np.float64)) / 2)
    return plus, minus, steps


def _directions(rng, args, argnums):
    return [rng.standard_normal(np.shape(args[k])) for k in argnums]


def _as64(x):
    return np.asarray(x, dtype=np.float64)


# =============================================================================================
# Checks
# =============================================================================================

STACKS = ("jit", "grad_fd", "jit_grad", "jit_value_and_grad", "grad_of_jit", "jvp_fd",
          "vjp_jvp", "jit_jvp", "hessian_fd", "jit_hessian")


@dataclass
class Failure:
    program: Program
    stack: str
    message: str
    keys: list = field(default_factory=list)

    def report(self) -> str:
        return format_failure(self.program, self.stack, self.message)


class Checker:
    """Runs the checks of one program; compiled functions are built once and reused."""

    def __init__(self, prog: Program, record: set | None = None):
        self.prog = prog
        ns = prog.namespace()
        self.f, self.loss, self.loss_fd = ns["f"], ns["loss"], ns["loss_fd"]
        self.args = prog.args()
        self.argnums = prog.argnums()
        # float32 anywhere in what a value is computed from sets its tolerances
        f32_arg = any(np.asarray(self.args[k]).dtype == F32 for k in self.argnums)
        outs = prog.kept_outputs()
        self.rtol = {v.name: RTOL[F32 if v.lowp else F64] for v in outs}
        self.jrtol = {v.name: GRAD_RTOL[F32 if v.lowp or f32_arg else F64] for v in outs}
        self.dtype = F32 if f32_arg or any(v.lowp for v in prog.loss_terms(True)) else F64
        self.jdtype = F32 if f32_arg or any(v.lowp for v in outs if prog.fd_term(v)) else F64
        gdt = F32 if f32_arg or any(v.lowp for v in prog.loss_terms(False)) else F64
        self.grtol = GRAD_RTOL[gdt]
        self.scales = {v.name: v.mag for v in prog.kept_outputs()}
        self.record = record
        self.rng = np.random.default_rng(prog.seed % (1 << 32))
        self._cache: dict = {}
        self.has_grad = bool(self.argnums) and bool(prog.loss_terms(False))
        self.has_fd = bool(self.argnums) and bool(prog.loss_terms(True))
        self.no_rev = "nested_unbounded_while" in prog.flags
        self.no_rev2 = self.no_rev or "unbounded_while" in prog.flags

    # -- values -------------------------------------------------------------------------

    def fd_keys(self) -> list[str]:
        """Outputs whose derivative must equal the finite-difference one."""
        return [v.name for v in self.prog.kept_outputs() if self.prog.fd_term(v)]

    def eager(self):
        if "eager" not in self._cache:
            with np.errstate(all="ignore"):
                self._cache["eager"] = self.f(*self.args)
        return self._cache["eager"]

    def interp_grad(self, loss=None):
        loss = loss or self.loss
        key = ("grad", loss)
        if key not in self._cache:
            with np.errstate(all="ignore"):
                self._cache[key] = tj.grad(loss, argnums=self.argnums)(*self.args)
        return self._cache[key]

    def jvp_tangents(self):
        if "tangents" not in self._cache:
            ts = []
            for k, x in enumerate(self.args):
                if k in self.argnums:
                    t = self.rng.standard_normal(np.shape(x))
                    ts.append(float(t) if isinstance(x, float) else
                              np.asarray(t, np.asarray(x).dtype))
                else:
                    ts.append(np.zeros(np.shape(x), np.asarray(x).dtype) if not isinstance(
                        x, (int, float)) else type(x)(0))
            self._cache["tangents"] = ts
        return self._cache["tangents"]

    def interp_jvp(self):
        if "jvp" not in self._cache:
            with np.errstate(all="ignore"):
                self._cache["jvp"] = tj.jvp(self.f, tuple(self.args),
                                            tuple(self.jvp_tangents()))
        return self._cache["jvp"]

    def coverage(self) -> None:
        """Record the primitives of the IRs this program makes (traced, optimized, JVP,
        linearized and transposed, gradient)."""
        if self.record is None:
            return
        from tracejit import api
        from tracejit.optimize import optimize
        from tracejit.transforms.jvp import has_tangent
        ir = tj.make_ir(self.f)(*self.args)
        tj.check_ir(ir)
        primitives_in(ir, self.record)
        primitives_in(optimize(ir), self.record)
        if self.argnums and not self.no_rev:
            diff = [has_tangent(a) for a in ir.in_avals]
            parts = api.vjp_irs(ir, diff)
            tj.check_ir(parts.primal)
            tj.check_ir(parts.backward)
            primitives_in(parts.primal, self.record)
            primitives_in(parts.backward, self.record)
        if self.has_grad and not self.no_rev:
            gir = tj.make_ir(tj.grad(self.loss, argnums=self.argnums))(*self.args)
            tj.check_ir(gir)
            primitives_in(gir, self.record)

    # -- checks ---------------------------------------------------------------------------

    def check_jit(self):
        want_eager = self.eager()
        jf = tj.jit(self.f)
        with tj.disable_jit(), np.errstate(all="ignore"):
            interp = jf(*self.args)
        compare(interp, want_eager, self.rtol, self.scales, "interpreter vs eager NumPy")
        got = jf(*self.args)
        compare(got, interp, self.rtol, self.scales, "jit(f) vs interpreter")

    def _fd_check(self, loss, grads, what):
        """<grad, v> against central differences along random directions v; a direction
        whose differences at h and h/2 disagree (a kink or a jump nearby) is retried."""
        h = FD_H[self.dtype]
        tol = FD_RTOL[self.dtype]
        grads = grads if isinstance(grads, tuple) else (grads,)
        for _ in range(4):
            dirs = _directions(self.rng, self.args, self.argnums)
            est = []
            with np.errstate(all="ignore"):
                for hh in (h, h / 2):
                    plus, minus, steps = _perturb(self.args, self.argnums, dirs, hh)
                    lp, lm = float(loss(*plus)), float(loss(*minus))
                    est.append(((lp - lm) / 2, steps, abs(lp) + abs(lm)))
            pred = [sum(float(np.sum(_as64(g) * s)) for g, s in zip(grads, steps))
                    for _, steps, _ in est]
            scale = [sum(float(np.sum(np.abs(_as64(g) * s))) for g, s in zip(grads, steps))
                     for _, steps, _ in est]
            noise = [50 * np.finfo(self.dtype).eps * m for _, _, m in est]
            (d1, _, _), (d2, _, _) = est
            if not np.isfinite([d1, d2] + pred).all():
                raise Mismatch(f"{what}: non-finite gradient or loss: <g, v> = {pred}, "
                               f"finite differences {d1, d2}")
            # the two estimates are of steps h and h/2: compare per unit step
            if abs(d1 - 2 * d2) > tol * (abs(d1) + scale[0]) + 2 * noise[0] + noise[1]:
                continue
            if abs(pred[1] - d2) <= tol * (abs(d2) + scale[1]) + noise[1]:
                return
            raise Mismatch(f"{what}: <grad, dx> = {pred[1]!r} but finite differences give "
                           f"{d2!r} (step {h / 2}, scale {scale[1]:.3g})")
        # every direction met a kink: nothing to compare

    def check_grad_fd(self):
        g = self.interp_grad(self.loss_fd)
        self._fd_check(self.loss_fd, g, "grad(loss) vs finite differences")

    def check_grad_of_jit(self):
        with np.errstate(all="ignore"):
            g = tj.grad(tj.jit(self.loss_fd), argnums=self.argnums)(*self.args)
        compare(g, self.interp_grad(self.loss_fd), self.grtol, None,
                "grad(jit(loss)) vs grad(loss)")
        self._fd_check(self.loss_fd, g, "grad(jit(loss)) vs finite differences")

    def compiled_grad(self):
        if "cgrad" not in self._cache:
            self._cache["cgrad"] = tj.jit(tj.grad(self.loss, argnums=self.argnums))
        return self._cache["cgrad"]

    def check_jit_grad(self):
        got = self.compiled_grad()(*self.args)
        compare(got, self.interp_grad(), self.grtol, None, "jit(grad(loss)) vs grad(loss)")

    def check_jit_value_and_grad(self):
        vg = tj.jit(tj.value_and_grad(self.loss, argnums=self.argnums))
        v, g = vg(*self.args)
        with np.errstate(all="ignore"):
            want_v = self.loss(*self.args)
        compare(v, np.float64(want_v), self.grtol, None, "jit(value_and_grad) value vs loss")
        compare(g, self.interp_grad(), self.grtol, None,
                "jit(value_and_grad(loss)) gradient vs grad(loss)")

    def check_jvp_fd(self):
        out, tan = self.interp_jvp()
        keys = self.fd_keys()
        if not keys or not self.argnums:
            return
        compare(out, self.eager(), self.rtol, self.scales, "jvp primal vs eager")
        h = FD_H[self.jdtype]
        tol = FD_RTOL[self.jdtype]
        ts = [np.asarray(self.jvp_tangents()[k], np.float64) for k in self.argnums]
        est = []
        with np.errstate(all="ignore"):
            for hh in (h, h / 2):
                plus, minus, steps = _perturb(self.args, self.argnums, ts, hh)
                fp, fm = self.f(*plus), self.f(*minus)
                est.append((fp, fm, steps))
        bad = []
        for key in keys:
            t = _as64(tan[key])
            ests = []
            for (fp, fm, steps), hh in zip(est, (h, h / 2)):
                ratio = [float(np.sum(s)) / (hh * float(np.sum(tt))) if np.sum(tt) else 1.0
                         for s, tt in zip(steps, ts)]
                del ratio
                ests.append((_as64(fp[key]) - _as64(fm[key])) / (2 * hh))
            mag = max(float(np.max(np.abs(_as64(self.eager()[key])), initial=0.0)), 1e-300)
            noise = 50 * np.finfo(self.jdtype).eps * mag / (h / 2)
            scale = max(float(np.max(np.abs(t), initial=0.0)),
                        float(np.max(np.abs(ests[1]), initial=0.0)))
            smooth = np.abs(ests[0] - ests[1]) <= tol * (np.abs(ests[1]) + scale) + 3 * noise
            err = np.abs(t - ests[1]) - tol * (np.abs(ests[1]) + scale) - noise
            err = np.where(smooth, err, 0.0)
            if err.size and np.nanmax(err) > 0 or not np.isfinite(t).all():
                k = int(np.nanargmax(err)) if err.size else 0
                bad.append((key, f"out[{key!r}]: jvp {t.ravel()[k] if t.size else t!r} vs "
                                 f"finite differences {ests[1].ravel()[k] if t.size else 0!r}"))
        if bad:
            raise Mismatch("jvp vs finite differences:\n  " + "\n  ".join(m for _, m in bad[:6]),
                           [k for k, _ in bad])

    def check_vjp_jvp(self):
        out, tan = self.interp_jvp()
        keys = self.fd_keys()
        if not keys:
            return
        f = self.f

        def f_keys(*args):
            out = f(*args)
            return {k: out[k] for k in keys}
        with np.errstate(all="ignore"):
            out2, f_vjp = tj.vjp(f_keys, *self.args)
        cts = {}
        for key, val in out2.items():
            a = np.asarray(val)
            cts[key] = self.rng.standard_normal(a.shape).astype(a.dtype) if a.dtype.kind == "f" \
                and np.isfinite(a).all() else np.zeros(a.shape, a.dtype)
        with np.errstate(all="ignore"):
            back = f_vjp(cts)
        ts = self.jvp_tangents()
        lhs = sum(float(np.sum(_as64(back[k]) * _as64(ts[k]))) for k in self.argnums)
        rhs = sum(float(np.sum(_as64(cts[k]) * _as64(tan[k]))) for k in cts
                  if np.asarray(cts[k]).dtype.kind == "f" and np.any(cts[k]))
        scale = sum(float(np.sum(np.abs(_as64(back[k]) * _as64(ts[k])))) for k in self.argnums)
        scale += sum(float(np.sum(np.abs(_as64(cts[k]) * _as64(tan[k])))) for k in cts
                     if np.asarray(cts[k]).dtype.kind == "f" and np.any(cts[k]))
        if not (abs(lhs - rhs) <= 1e3 * self.grtol * scale + 1e-300) or not math.isfinite(lhs):
            raise Mismatch(f"vjp vs jvp: <vjp(u), v> = {lhs!r} but <u, jvp(v)> = {rhs!r}")

    def check_jit_jvp(self):
        f = self.f

        def fwd(primals, tangents):
            return tj.jvp(f, primals, tangents)
        got = tj.jit(fwd)(tuple(self.args), tuple(self.jvp_tangents()))
        compare(got, self.interp_jvp(), self.jrtol, None, "jit(jvp) vs jvp")

    def _hessian_arg(self):
        for k in self.argnums:
            if np.size(self.args[k]) <= 4:
                return k
        return None

    def check_hessian_fd(self):
        k = self._hessian_arg()
        if k is None:
            return
        try:
            with np.errstate(all="ignore"):
                hess = _as64(tj.hessian(self.loss_fd, argnums=k)(*self.args))
        except ConcretizationError:
            # jacfwd/jacrev close over the other arguments as NumPy arrays (unlike grad,
            # which traces them all): a NumPy array indexed by a traced value cannot work
            return
        g = tj.grad(self.loss_fd, argnums=k)
        x = self.args[k]
        shape = np.shape(x)
        n = int(np.prod(shape, dtype=np.int64))
        h = FD_H[self.dtype] * 10
        tol = FD_RTOL[self.dtype] * 10
        if n == 0:
            return
        cols = []
        for j in range(n):
            e = np.zeros(n)
            e[j] = 1.0
            e = e.reshape(shape)
            est = []
            for hh in (h, h / 2):
                plus, minus, steps = _perturb(self.args, (k,), [e], hh)
                with np.errstate(all="ignore"):
                    est.append((_as64(g(*plus)) - _as64(g(*minus))) / (2 * _as64(steps[0]).sum()))
            cols.append(est)
        fd1 = np.stack([c[0] for c in cols], axis=-1).reshape(shape + shape)
        fd2 = np.stack([c[1] for c in cols], axis=-1).reshape(shape + shape)
        scale = max(float(np.max(np.abs(hess), initial=0.0)), 1e-30)
        smooth = np.abs(fd1 - fd2) <= tol * (np.abs(fd2) + scale)
        err = np.where(smooth, np.abs(hess - fd2) - tol * (np.abs(fd2) + scale), 0.0)
        if not np.isfinite(hess).all() or err.size and err.max() > 0:
            raise Mismatch(f"hessian vs finite differences of the gradient (argument {k}):\n"
                           f"  hessian {hess!r}\n  fd      {fd2!r}")
        self._cache["hessian"] = (k, hess)

    def check_jit_hessian(self):
        k = self._hessian_arg()
        if k is None:
            return
        got = tj.jit(tj.hessian(self.loss_fd, argnums=k))(*self.args)
        with np.errstate(all="ignore"):
            want = tj.hessian(self.loss_fd, argnums=k)(*self.args)
        compare(got, want, self.grtol * 10, None, "jit(hessian) vs hessian")

    def applicable(self, stack: str) -> bool:
        if stack == "jit" or stack == "jit_jvp":
            return True
        if stack in ("jvp_fd", "vjp_jvp"):
            return bool(self.argnums) and (stack == "jvp_fd" or not self.no_rev)
        if stack in ("grad_fd", "grad_of_jit"):
            return self.has_fd and not self.no_rev
        if stack in ("jit_grad", "jit_value_and_grad"):
            return self.has_grad and not self.no_rev
        if stack in ("hessian_fd", "jit_hessian"):
            return self.has_fd and not self.no_rev2 and self._hessian_arg() is not None
        return False

    def run(self, stack: str) -> None:
        getattr(self, f"check_{stack}")()


def choose_stacks(prog: Program, rng: random.Random) -> list[str]:
    """The transform stacks checked for a program: the interpreted ones always; of the
    compiled ones jit(f), one compiled gradient, and sometimes jit(jvp) / jit(hessian)."""
    stacks = ["jit", "grad_fd", "jvp_fd", "vjp_jvp"]
    stacks.append(rng.choice(["jit_grad", "jit_value_and_grad"]))
    if rng.random() < 0.3:
        stacks.append("grad_of_jit")
    if rng.random() < 0.25:
        stacks.append("jit_jvp")
    if prog.small:
        stacks.append("hessian_fd")
        if rng.random() < 0.4:
            stacks.append("jit_hessian")
    return stacks


def _error_text(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    frames = [fr for fr in tb if "tracejit" in fr.filename]
    where = f" (at {frames[-1].filename.split('tracejit/')[-1]}:{frames[-1].lineno} in " \
            f"{frames[-1].name})" if frames else ""
    msg = str(e)
    if len(msg) > 1500:
        msg = msg[:1500] + " ..."
    return f"{type(e).__name__}{where}: {msg}"


def run_check(checker: Checker, stack: str) -> Failure | None:
    try:
        checker.run(stack)
    except Mismatch as e:
        return Failure(checker.prog, stack, str(e), e.keys)
    except Exception as e:  # noqa: BLE001 - every error of tracejit is a finding
        return Failure(checker.prog, stack, _error_text(e))
    return None


def check_program(prog: Program, stacks=None, record: set | None = None,
                  rng: random.Random | None = None, timings: dict | None = None
                  ) -> list[Failure]:
    """Run the checks of `stacks` (default: `choose_stacks`) on `prog`; return failures.
    `timings` (if given) receives the seconds each stack took."""
    timings = {} if timings is None else timings
    rng = rng or random.Random(prog.seed)
    try:
        checker = Checker(prog, record)
    except Exception as e:  # noqa: BLE001
        return [Failure(prog, "setup", _error_text(e))]
    stacks = choose_stacks(prog, rng) if stacks is None else stacks
    failures = []
    t = time.time()
    try:
        checker.coverage()
    except Exception as e:  # noqa: BLE001
        failures.append(Failure(prog, "trace", _error_text(e)))
    timings["trace"] = time.time() - t
    for stack in stacks:
        if not checker.applicable(stack):
            continue
        t = time.time()
        fail = run_check(checker, stack)
        timings[stack] = time.time() - t
        if fail is not None:
            failures.append(fail)
    return failures


def _failure_kind(fail: Failure, precise: bool = False) -> tuple:
    """What makes two failures the same: the stack, and the error's type and place (or the
    name of the comparison that failed)."""
    first = fail.message.splitlines()[0] if fail.message else ""
    if " (at " in first:
        first = first.split(" (at ")[0] + first.split(" (at ")[1].split(":")[0]
    else:
        first = first.split(":")[0]
    if not precise:
        return fail.stack, first
    line = (fail.message.splitlines() or [""])[0]
    if " (at " in line:  # an error: its type and place, whichever stack met it
        return "error", line.split("): ")[0]
    # a mismatch: also the function that computes the first output named
    where = ""
    for st_ in fail.program.stmts:
        if fail.keys and fail.keys[0] in st_.defines:
            m = re.search(r"([A-Za-z_][\w.]*)\(", st_.lines[-1].split("=", 1)[-1])
            where = m.group(1) if m else st_.lines[-1].split("=", 1)[-1].strip()[:20]
    return fail.stack, first, where


def _retry(prog: Program, keep: list, fail: Failure, cut=None) -> Failure | None:
    """`fail`'s check on `prog` reduced to the outputs `keep` (and with the statements `cut`
    replaced by inputs), if it fails the same way."""
    small = prog.reduced(keep, cut)
    try:
        checker = Checker(small)
    except Exception:  # noqa: BLE001
        return None
    if fail.stack in ("trace", "setup"):
        again = _trace_failure(checker)
    elif not checker.applicable(fail.stack):
        return None
    else:
        again = run_check(checker, fail.stack)
    return again if again is not None and _failure_kind(again) == _failure_kind(fail) else None


def reduce_failure(fail: Failure, budget: int = 24) -> Failure:
    """The same failure on the program reduced to as few outputs as possible (the outputs
    the failure names first, then delta debugging over the rest); statements no kept output
    needs are dropped with them."""
    prog = fail.program
    keep = [v.name for v in prog.kept_outputs()]
    best = fail
    tries = 0
    named = [k for k in fail.keys if k in keep]
    for cand in ([named] if named else []) + [[k] for k in named[:3]]:
        again = _retry(prog, cand, fail)
        tries += 1
        if again is not None:
            keep, best = cand, again
            if len(cand) == 1:
                break
    n = 2
    while len(keep) >= 2 and tries < budget:
        size = math.ceil(len(keep) / n)
        chunks = [keep[i:i + size] for i in range(0, len(keep), size)]
        for c in chunks:
            rest = [k for k in keep if k not in c]
            tries += 1
            again = _retry(prog, rest, fail)
            if again is not None:
                keep, best = rest, again
                n = max(n - 1, 2)
                break
            if tries >= budget:
                break
        else:
            if n >= len(keep):
                break
            n = min(2 * n, len(keep))
    # then cut the chain: statements whose values may as well be inputs
    cut = set(prog.cut)
    for k in best.program.cuttable():
        if tries >= 2 * budget:
            break
        tries += 1
        again = _retry(prog, keep, fail, cut | {k})
        if again is not None:
            cut.add(k)
            best = again
    return best


def _trace_failure(checker: Checker) -> Failure | None:
    try:
        checker.record = set()
        checker.coverage()
    except Exception as e:  # noqa: BLE001
        return Failure(checker.prog, "trace", _error_text(e))
    return None


CHECK_SNIPPETS = {
    "jit": "print(tj.jit(f)(*args))\nwith tj.disable_jit():\n    print(tj.jit(f)(*args))",
    "grad_fd": "print(tj.grad(loss_fd, argnums=ARGNUMS)(*args))  # vs finite differences",
    "grad_of_jit": "print(tj.grad(tj.jit(loss_fd), argnums=ARGNUMS)(*args))",
    "jit_grad": "print(tj.jit(tj.grad(loss, argnums=ARGNUMS))(*args))\n"
                "print(tj.grad(loss, argnums=ARGNUMS)(*args))",
    "jit_value_and_grad": "print(tj.jit(tj.value_and_grad(loss, argnums=ARGNUMS))(*args))\n"
                          "print(tj.value_and_grad(loss, argnums=ARGNUMS)(*args))",
    "jvp_fd": "tangents = [np.ones(np.shape(a)) for a in args]\n"
              "print(tj.jvp(f, args, tangents))  # vs finite differences",
    "vjp_jvp": "out, f_vjp = tj.vjp(f, *args)\nprint(f_vjp(out))",
    "jit_jvp": "tangents = [np.ones(np.shape(a)) for a in args]\n"
               "print(tj.jit(lambda p, t: tj.jvp(f, p, t))(tuple(args), tuple(tangents)))",
    "hessian_fd": "print(tj.hessian(loss_fd)(*args))  # vs finite differences of the gradient",
    "jit_hessian": "print(tj.jit(tj.hessian(loss_fd))(*args))\n"
                   "print(tj.hessian(loss_fd)(*args))",
    "trace": "print(tj.make_ir(tj.grad(loss, argnums=ARGNUMS))(*args))",
    "setup": "print(f(*args))",
}


def format_failure(prog: Program, stack: str, message: str) -> str:
    """A runnable snippet: the program (reduced), its inputs and the failing check."""
    check = CHECK_SNIPPETS.get(stack, "").replace("ARGNUMS", repr(prog.argnums()))
    if "hessian" in check:
        try:
            args = prog.args()
            k = next(k for k in prog.argnums() if np.size(args[k]) <= 4)
            check = check.replace("hessian(loss_fd)", f"hessian(loss_fd, argnums={k})")
        except Exception:  # noqa: BLE001 - the snippet without argnums
            pass
    lines = [f"# program seed {prog.seed}, stack {stack}",
             f"# inputs: {prog.describe_args()}",
             "# " + "\n# ".join(message.splitlines()),
             PRELUDE.split("\n\ndef iota")[0] if "iota(" not in prog.source()
             and "arg(" not in prog.source() else PRELUDE,
             "",
             prog.source(),
             "args = make_args()",
             check]
    return "\n".join(lines)


# =============================================================================================
# Runs
# =============================================================================================

def program_seed(run_seed: int, index: int) -> int:
    return zlib.crc32(f"{run_seed}:{index}".encode())


def run(run_seed: int, n_programs: int, small_share: float = 0.2, stacks=None,
        record: set | None = None, minutes: float | None = None, only=None, show=False,
        out=sys.stdout, reduce=True, adaptive=False, ran: set | None = None
        ) -> list[Failure]:
    """Generate and check `n_programs` programs; prints each failure as a snippet.

    `adaptive`: each program prefers the primitives earlier programs of the run missed (few
    programs cover everything, but a program then depends on the ones before it, so
    `only=N` reproduces it only in non-adaptive runs). `ran` receives the stacks checked."""
    start = time.time()
    failures: list[Failure] = []
    seen: set = set()
    want = set(all_primitives())
    indices = [only] if only is not None else range(n_programs)
    for index in indices:
        if minutes is not None and time.time() - start > 60 * minutes:
            break
        seed = program_seed(run_seed, index)
        small = random.Random(seed ^ 0x5A5A).random() < small_share
        cov = record if record is not None else set()
        try:
            prog = generate(seed, small, frozenset(want - cov) if adaptive else frozenset())
        except GenError as e:
            print(f"[{index}] generator: {e}", file=out)
            continue
        if show:
            print(f"# --- program {index} (seed {seed})\n{prog.source()}", file=out)
        t0 = time.time()
        timings: dict = {}
        todo = stacks
        if adaptive and stacks is None and ran is not None:  # every stack, early in the run
            todo = choose_stacks(prog, random.Random(prog.seed))
            missing = [st for st in STACKS if st not in ran and st not in todo]
            todo += [st for st in missing if not st.startswith("jit")]  # (no compile)
            todo += [st for st in missing if st.startswith("jit")][:1]
        fails = check_program(prog, todo, cov, timings=timings)
        if ran is not None:
            ran.update(k for k in timings if k in STACKS)
        if record is None:
            want -= cov
        dt = time.time() - t0
        status = "ok" if not fails else f"{len(fails)} FAILED"
        spent = " ".join(f"{k} {v:.1f}" for k, v in timings.items() if v >= 0.5)
        print(f"[{index}] seed {seed} {'small ' if small else ''}{prog.fdt.name} "
              f"{len(prog.outputs)} outputs {dt:.1f}s ({spent}): {status}", file=out,
              flush=True)
        for fail in fails:
            kind = _failure_kind(fail, precise=True)
            if kind in seen:  # reported (reduced) before: one line
                failures.append(fail)
                print(f"    again: {kind[0]}: {fail.message.splitlines()[0][:150]}", file=out,
                      flush=True)
                continue
            seen.add(kind)
            rep = reduce_failure(fail) if reduce else fail
            failures.append(rep)
            print(textwrap.indent(rep.report(), "    "), file=out, flush=True)
    return failures


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--programs", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--small", type=float, default=0.2)
    p.add_argument("--minutes", type=float, default=None)
    p.add_argument("--only", type=int, default=None)
    p.add_argument("--stacks", default=None, help="comma-separated subset of " +
                   ", ".join(STACKS))
    p.add_argument("--show", action="store_true")
    a = p.parse_args(argv)
    stacks = a.stacks.split(",") if a.stacks else None
    cov: set = set()
    t = time.time()
    failures = run(a.seed, a.programs, a.small, stacks, cov, a.minutes, a.only, a.show)
    missing = sorted(all_primitives() - cov)
    print(f"\n{len(failures)} failures; {time.time() - t:.0f}s; primitives never reached: "
          f"{missing or 'none'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
