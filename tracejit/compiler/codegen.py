"""Code generation: loop plan -> the source of one Python module of explicit Numba loops.

A printer, not an optimizer: every decision was made by the planner. The module imports only
`math`, `numpy` and `numba`; `run(*inputs)` returns the flat outputs, so it can be saved and
used without tracejit. Loops use the IR's variable names and are commented with the
equations they compute.
"""

from __future__ import annotations

import contextlib
import functools
import keyword
import math
import os
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from .. import dtypes
from ..ir import IR, Eqn, Literal, TapeType, Var, format_param
from ..numba_interop import numba_call_p
from ..primitives import control as cf
from ..primitives import decompositions as dc
from ..primitives import elementwise as ew
from ..primitives import fft as ff
from ..primitives import indexing as ix
from ..primitives import linalg as la
from ..primitives import reductions as rd
from ..primitives import sorting as so
from ..primitives import structural as st
from . import buffers, complex_math, external, special, vecmath
from .index import ELEMENTWISE_LIKE, input_reads
from .plan import CONTROL_PRIMS, CallKernel, Computation, LoopKernel, Plan, _cone, _loop_vars

# Below this many loop iterations a kernel stays serial even with parallel=True: a prange
# launch costs 5-25 us on a busy 2-core machine (notes/numba.md, section 6). Measured here on
# W1's gradient loop, serial vs 2-thread prange: n=1000 22 vs 13 us, n=16384 466 vs 302 us,
# n=1e6 32.0 vs 17.5 ms; 2**14 iterations keeps the gain well above a busy launch cost.
PARALLEL_MIN_ITERATIONS = 1 << 14

# The chunks a loop with sums across its outer axis is split into for threads (each chunk
# sums into a partial row of its own; see `ModuleWriter.can_parallelize`): a fixed count, so
# results do not depend on the number of threads, and enough to balance a busy core.
CHUNK_PARTS_MAX = 8

# Matrix products of at most this many multiply-adds run as plain loops: a BLAS call costs
# about 0.3 us before any work. Measured here (one thread, float64), BLAS against loops:
# 4x4x4 0.33 vs 0.16 us, 8x8x8 0.47 vs 0.60 us, 16x16x16 1.6 vs 2.6 us, 32x64x64 51 vs 93 us.
TINY_PRODUCT = 256

# BLAS and LAPACK calls of at least this many floating-point operations (a 256^3 product,
# about 0.6 ms on one core in float64) run on every core, then BLAS goes back to one thread
# (`blas.py` explains why one is the rule). Measured here, jit of a product (2 cores, median
# of 200 calls, one thread against two): n = 128 (4e6 operations) f64 105 vs 90-119 us, no
# gain; n = 256 (3.4e7) f64 683-800 vs 597-599 us, f32 357-413 vs 201-312 us. W3's MLP
# (three 1e8-operation float32 products): 2.24 ms on one thread, 1.24-1.27 ms switching.
# W13's Gaussian-process likelihood, n = 2000 (~1e10 operations): 0.71 s on one BLAS thread
# and 0.52 s on two, JAX 0.62 s. Setting TRACEJIT_BLAS_THREADS fixes the count and turns this
# off.
BLAS_THREAD_FLOPS = 1 << 25


def _blas_thread_count() -> int:
    """Threads for the big BLAS calls: the cores Numba uses, unless the user fixed the count
    (TRACEJIT_BLAS_THREADS) or there is one core."""
    import os
    if os.environ.get("TRACEJIT_BLAS_THREADS", "").strip():
        return 1
    from numba import config
    return max(1, int(config.NUMBA_NUM_THREADS))


# Arrays of at least this many bytes ask the kernel for transparent huge pages before
# their first write, as NumPy does for its own big arrays: Numba's allocator leaves them on
# 4 KiB pages, and faulting those in cost more than the loop that filled them. Measured
# here (2-core AVX-512 host, THP "madvise"), one thread writing 2 * a + 1 into a new 80 MB
# array: 42 ms on 4 KiB pages, 11 ms after madvise(MADV_HUGEPAGE).
HUGE_PAGE_MIN_BYTES = 1 << 22


@functools.cache
def huge_pages_available() -> bool:
    """Linux with transparent huge pages not switched off (TRACEJIT_HUGE_PAGES=0 opts out)."""
    if not sys.platform.startswith("linux") or os.environ.get("TRACEJIT_HUGE_PAGES") == "0":
        return False
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return "[never]" not in f.read()
    except OSError:
        return False


_RESERVED = {"np", "math", "numba", "run", "kernel", "range", "min", "max", "abs", "float",
             "int", "bool", "len", "print", "sum", "True", "False", "None",
             "k"}  # `k`: the loop variable of cumulative and arg-reduce kernels


def _safe(name: str) -> str:
    return name + "_" if keyword.iskeyword(name) or name in _RESERVED else name


def literal(value, dtype) -> str:
    """A scalar constant typed for Numba (float32 constants stay float32)."""
    dtype = np.dtype(dtype)
    if dtypes.is_bool(dtype):
        return "True" if bool(value) else "False"
    if dtypes.is_float(dtype):
        v = float(value)
        if math.isnan(v):
            text = "math.nan"
        elif math.isinf(v):
            text = "math.inf" if v > 0 else "-math.inf"
        else:
            text = repr(v)
        return text if dtype == dtypes.float64 else f"np.{dtype.name}({text})"
    if dtypes.is_complex(dtype):
        v = complex(value)
        part = dtypes.float64
        text = f"complex({literal(v.real, part)}, {literal(v.imag, part)})"
        return text if dtype == dtypes.complex128 else f"np.{dtype.name}({text})"
    return str(int(value)) if dtype == dtypes.int64 else f"np.{dtype.name}({int(value)})"


def cast(expr: str, dtype, from_dtype=None) -> str:
    dtype = np.dtype(dtype)
    if from_dtype is not None and dtypes.is_complex(from_dtype) and \
            not dtypes.is_complex(dtype) and not dtypes.is_bool(dtype):
        expr = f"({expr}).real"  # as NumPy's astype: the imaginary part is dropped
    if dtypes.is_bool(dtype):
        return f"({expr} != 0)"
    return f"np.{dtype.name}({expr})"


_REDUCE_INIT = {
    rd.reduce_sum_p: lambda d: literal(0, d),
    rd.reduce_prod_p: lambda d: literal(1, d),
    rd.reduce_max_p: lambda d: literal(-np.inf, d) if dtypes.is_float(d) else (
        "False" if dtypes.is_bool(d) else literal(np.iinfo(d).min, d)),
    rd.reduce_min_p: lambda d: literal(np.inf, d) if dtypes.is_float(d) else (
        "True" if dtypes.is_bool(d) else literal(np.iinfo(d).max, d)),
}


def _combine(prim, acc: str, v: str, dtype) -> str:
    if prim is rd.reduce_sum_p:
        return f"{acc} + {v}"
    if prim is rd.reduce_prod_p:
        return f"{acc} * {v}"
    if dtypes.is_bool(dtype):
        return f"{acc} | {v}" if prim is rd.reduce_max_p else f"{acc} & {v}"
    return f"np.maximum({acc}, {v})" if prim is rd.reduce_max_p else f"np.minimum({acc}, {v})"


def _nan_flagged(comp) -> bool:
    """Float max/min row reductions, written as Python max/min plus a NaN flag."""
    return (comp.eqn.prim in (rd.reduce_max_p, rd.reduce_min_p)
            and dtypes.is_float(comp.var.aval.dtype))


class Writer:
    """Accumulates indented lines; `scope()` opens a block with its own memo of values."""

    def __init__(self):
        self.lines: list[str] = []
        self.depth = 1
        self.memo: list[dict] = [{}]
        # Where loop-invariant lines of the current stage go: just before its inner loops.
        self.hoist: tuple | None = None  # (line index, depth, memo scope index)
        self.guards = 0  # open if/else blocks (their reads must stay guarded)

    def line(self, text: str) -> None:
        self.lines.append("    " * self.depth + text)

    def hoisted_line(self, text: str) -> int:
        """Insert `text` before the current stage's inner loops; returns its memo scope."""
        pos, depth, scope = self.hoist
        self.lines.insert(pos, "    " * depth + text)
        self.hoist = (pos + 1, depth, scope)
        return scope

    @contextmanager
    def block(self, header: str):
        self.line(header)
        self.depth += 1
        self.memo.append({})
        self.guards += 1
        try:
            yield
        finally:
            self.guards -= 1
            self.memo.pop()
            self.depth -= 1

    def lookup(self, key):
        for scope in reversed(self.memo):
            if key in scope:
                return scope[key]
        return None

    def remember(self, key, name) -> None:
        self.memo[-1][key] = name


class ModuleWriter:
    def __init__(self, plan: Plan, fastmath, parallel: bool = False, parent=None,
                 prefix: str = "", names: dict | None = None):
        self.plan = plan
        self.ir = plan.ir
        self.prefix = prefix
        self.depth = 0 if parent is None else parent.depth + 1
        self.root = self if parent is None else parent.root
        self.consts: list = []  # (name, value) of every constant, on the root writer
        self.blas_dtypes: set = set()  # dtypes of the BLAS calls, on the root writer
        self.huge_pages = False  # some allocation asks for huge pages (root writer)
        # The big top-level arrays the kernel takes as arguments (buffers.py), as
        # (parameter, length, dtype); None where the kernel allocates all its arrays (root).
        self.pooled: list | None = None
        self.pool_vars: set = set()  # the results that may be such arrays (root writer)
        self.special_used: set = set()  # special-function helpers called (root writer)
        self.complex_used: set = set()  # complex helpers called (compiler/complex_math.py)
        self.externals: set = set()  # user Numba functions called (root writer)
        # LAPACK/BLAS helpers the module defines because some kernel calls them: names of
        # `_LAPACK_HELPERS` (root writer)
        self.lapack_helpers: set = set()
        self.floor_divides: set = set()  # dtypes of float floor divisions (root writer)
        self.blas_threads = False  # some big BLAS call switches threads (root writer)
        self.math = vecmath.MathRenderer() if parent is None else None  # on the root writer
        self.reduction_ops: set = set()  # "add"/"mul" reassociating steps used, on the root
        self.names = names if names is not None else \
            {v: _safe(prefix + n) for v, n in plan.names.items()}
        self.producer = plan_producers(plan)
        self.values: dict[Var, tuple] = {}  # var -> ("array" | "scalar", name)
        self.local_count: dict[str, int] = {}
        self.uses = plan_uses(plan)
        self.fastmath = fastmath
        self.parallel = bool(parallel)
        self.used_prange = False
        # Row scratch buffers of the kernel being written: var -> (buffer name, first stage).
        self.row_cache: dict = {}
        self.chunk_parts: dict = {}  # accumulator -> its per-chunk partial rows (loop_kernel)
        self.stage_index = -1
        self.stage_idx: tuple = ()
        self.n_outer = 0
        self.inner_locals: set = set()  # locals defined inside the current inner loops
        self.last_in_place: set = set()
        self.w = Writer() if parent is None else parent.w
        # Outputs of a loop body that the loop stores per step: var -> the row to write into.
        self.targets: dict = {}
        self.in_place: set = set()
        self.spare_shapes: dict = {}  # spare buffer of an array carry -> its shape
        if parent is not None:
            self.local_count = parent.local_count

    # -- names ----------------------------------------------------------------------------
    def name(self, v: Var) -> str:
        return self.names[v]

    def comment_name(self, v: Var) -> str:
        """How comments name a variable: its IR name."""
        return self.plan.names.get(v, repr(v))

    def fresh(self, base: str) -> str:
        k = self.local_count.get(base, 0)
        self.local_count[base] = k + 1
        return f"{base}_{k}"

    # -- expressions ----------------------------------------------------------------------
    def read(self, atom, idx: list) -> str:
        """An expression for element `idx` of `atom`, emitting local assignments as needed."""
        if isinstance(atom, Literal):
            return literal(atom.value, atom.aval.dtype)
        idx = list(idx) if atom.aval.shape else []
        key = (atom, tuple(idx))
        hit = self.w.lookup(key)
        if hit is not None:
            return hit
        if atom in self.values:
            kind, name = self.values[atom]
            if kind == "rows":  # one step's slice of a scanned array: name = (array, step)
                base, t = name
                return f"{base}[{', '.join([t] + [str(i) for i in idx])}]"
            if kind == "array" and atom.aval.shape:
                return f"{name}[{', '.join(map(str, idx))}]"
            return name
        cached = self.row_cache.get(atom)
        if cached is not None and tuple(idx) == self.stage_idx:
            row, first_stage = cached
            inner = ", ".join(self.stage_idx[self.n_outer:])
            if self.stage_index > first_stage:
                return f"{row}[{inner}]"
        eqn = self.producer[atom]
        expr = self.inline(eqn, idx)
        if (expr.isidentifier() or _is_simple(expr)) and cached is None:
            return expr
        local = self.fresh(self.name(atom))
        if self.invariant(expr):  # depends on the outer loops only: once per row
            scope = self.w.hoisted_line(f"{local} = {expr}")
            self.w.memo[scope][key] = local
        else:
            self.w.line(f"{local} = {expr}")
            self.w.remember(key, local)
            if self.w.hoist is not None:
                self.inner_locals.add(local)
        if cached is not None and tuple(idx) == self.stage_idx:
            self.w.line(f"{cached[0]}[{inner}] = {local}")
        return local

    def invariant(self, expr: str) -> bool:
        """True if `expr` reads no inner loop variable and no local computed inside the inner
        loops (and no guard is open): it can move before the inner loops."""
        if self.w.hoist is None or self.w.guards:
            return False
        names = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expr))
        if any(re.fullmatch(r"j\d+", n) for n in names):
            return False
        return not (names & self.inner_locals)

    def inline(self, eqn: Eqn, idx: list) -> str:
        prim = eqn.prim
        if prim is st.iota_p:
            # Always cast: a prange index is unsigned in Numba's parfor lowering, and uint64
            # mixed with int64 (a gather clamp, `i + 1`) types as float64.
            return cast(str(idx[eqn.params["dimension"]]), eqn.params["dtype"])
        if prim is ix.gather_p:
            return self.gather(eqn, idx)
        branches = input_reads(eqn, idx)
        if len(branches) == 1 and branches[0].cond is None:
            args = {pos: self.read(eqn.inputs[pos], sub)
                    for pos, sub in branches[0].reads.items()}
            if prim in ELEMENTWISE_LIKE:
                return self.elementwise(eqn, [args[k] for k in range(len(eqn.inputs))])
            (value,) = args.values()
            return value
        # Guarded reads (pad, concatenate): an if/elif chain assigning one local.
        local = self.fresh(self.name(eqn.outs[0]))
        for k, branch in enumerate(branches):
            if branch.cond is None:
                header = "else:" if k else "if True:"
            else:
                header = f"{'if' if k == 0 else 'elif'} {branch.cond}:"
            with self.w.block(header):
                (pos, sub), = branch.reads.items()
                self.w.line(f"{local} = {self.read(eqn.inputs[pos], sub)}")
        if self.w.hoist is not None:  # assigned inside the inner loops: never hoist its readers
            self.inner_locals.add(local)
        return local

    def gather(self, eqn: Eqn, idx: list) -> str:
        operand, indices = eqn.inputs
        nb = indices.aval.ndim - 1
        k = indices.aval.shape[-1]
        coords = []
        for j in range(k):
            c = self.read(indices, list(idx[:nb]) + [j])
            n = operand.aval.shape[j]
            coords.append(f"min(max({c}, 0), {n - 1})")
        rest = list(idx[nb:])
        kind, name = self.values[operand]
        return f"{name}[{', '.join(coords + [str(i) for i in rest])}]"

    def elementwise(self, eqn: Eqn, args: list) -> str:
        prim = eqn.prim
        dtype = eqn.outs[0].aval.dtype
        if prim is st.select_p:
            return f"({args[1]} if {args[0]} else {args[2]})"
        if prim is st.convert_p:
            return cast(args[0], eqn.params["new_dtype"], eqn.inputs[0].aval.dtype)
        if prim is st.stop_gradient_p:
            return args[0]
        if prim is ew.integer_pow_p and dtypes.is_complex(dtype):  # NumPy's power
            one = literal(1, dtypes.real_dtype(dtype))
            y = eqn.params["y"]  # np.int64: not a literal, so one compiled specialization
            return self.complex_helpers(f"_cx_ipow({args[0]}, np.int64({y}), {one})", dtype)
        if prim is ew.integer_pow_p:
            return _wrap_narrow_int(_integer_pow(args[0], eqn.params["y"], dtype), dtype)
        row = ew.elementwise_table[prim]
        in_dtype = eqn.inputs[0].aval.dtype
        if dtypes.is_complex(in_dtype):  # Numba's complex arithmetic and cmath
            spelling = row.complex_expr or row.expr
            if np.dtype(in_dtype) == dtypes.complex64 and "_cx_" in spelling and \
                    complex_math.widens(spelling):  # helpers computing in float64
                args = [f"np.complex128({a})" for a in args]
            expr = spelling.format(
                *args, one=literal(1, in_dtype), two=literal(2, in_dtype),
                r1=literal(1, dtypes.real_dtype(in_dtype)),
                ln2=literal(math.log(2.0), dtypes.real_dtype(in_dtype)))
            if "_cx_" in expr:  # NumPy's special values (compiler/complex_math.py)
                return self.complex_helpers(expr, dtype)
            if "_sf_" in expr:  # a special function's helper, complex128 (compiler/special.py)
                self.root.special_used.update(re.findall(r"\b_sf_\w+", expr))
                if np.dtype(dtype) == dtypes.complex64:
                    return f"np.complex64({expr})"
            return expr if np.dtype(dtype) != dtypes.float32 else f"np.float32({expr})"
        if prim is ew.complex_p:
            expr = row.expr.format(*args)
            return expr if np.dtype(dtype) == dtypes.complex128 else f"np.complex64({expr})"
        if dtypes.is_float(in_dtype):
            if prim is ew.floor_divide_p:
                name = np.dtype(in_dtype).name
                self.root.floor_divides.add(name)
                return f"_floor_divide_{name}({args[0]}, {args[1]})"
            if vecmath.covers(prim.name):  # the renderer spells the call (vector or scalar)
                return _keep_float32(self.root.math.call(prim.name, in_dtype, args), dtype)
        expr = row.expr.format(*args, one=literal(1, in_dtype), two=literal(2, in_dtype))
        if "_tjx_" in expr:  # a user's Numba function (numba_interop.elementwise)
            self.root.externals.update(re.findall(r"\b_tjx_\w+", expr))
        if "_sf_" in expr:  # a special function's helper (compiler/special.py), float64
            self.root.special_used.update(re.findall(r"\b_sf_\w+", expr))
            expr = f"np.float32({expr})" if np.dtype(dtype) == dtypes.float32 else expr
        if dtypes.is_float(in_dtype) and "math." in expr:  # math calls inside an expression
            expr = _keep_float32(_MATH_CALL.sub(
                lambda m: (self.root.math.function(m.group(1), in_dtype) or m.group(0)[:-1])
                + "(", expr), dtype)
        return _wrap_narrow_int(expr, dtype)

    def complex_helpers(self, expr: str, dtype) -> str:
        """A loop expression calling complex helpers: the module defines them; complex64
        and float32 results are narrowed (most helpers compute in float64)."""
        self.root.complex_used.update(complex_math.used_in(expr))
        if np.dtype(dtype) == dtypes.complex64:
            return f"np.complex64({expr})"
        return f"np.float32({expr})" if np.dtype(dtype) == dtypes.float32 else expr

    def combine(self, prim, acc: str, v: str, dtype) -> str:
        """One step of a reduction into a scalar accumulator. Float sums and products
        may be reassociated (`_radd`/`_rmul`), so the loop vectorizes into partial sums;
        every other float operation keeps IEEE order."""
        if dtypes.is_float(dtype) and prim in (rd.reduce_sum_p, rd.reduce_prod_p):
            op = "add" if prim is rd.reduce_sum_p else "mul"
            self.root.reduction_ops.add(op)
            return f"_r{op}({acc}, {v})"
        return _combine(prim, acc, v, dtype)

    # -- kernels --------------------------------------------------------------------------
    def alloc(self, v: Var) -> None:
        name = self.name(v)
        target = self.targets.get(v)
        if target is not None:  # a loop body's output, written straight into its row
            self.w.line(f"{name} = {target}")
            self.in_place.add(v)
        else:
            self.empty(name, tuple(v.aval.shape), v.aval.dtype, pool=v in self.root.pool_vars)
        self.values[v] = ("array", name)

    def enable_buffer_pool(self) -> None:
        """Let the program's big results be buffer parameters (`empty`). Only results:
        they live to the end of the call anyway, whereas an intermediate taken up front
        would stay allocated for the whole call instead of only while it is in use."""
        ir = self.ir
        self.pooled = []
        self.pool_vars = {a for a in ir.outs if isinstance(a, Var) and a.aval.shape
                          and a not in ir.constvars and a not in ir.invars
                          and not (a in self.producer
                                   and self.producer[a].prim in CONTROL_PRIMS)}

    def empty(self, name: str, shape: tuple, dtype, pool: bool = False) -> None:
        """`name = np.empty(shape)`; a big one on huge pages (HUGE_PAGE_MIN_BYTES). With
        `pool`, an array of buffers.MIN_BYTES or more that the kernel makes once per call
        (at its top level) is a parameter instead, which the caller fills from the buffer
        pool (compiler/buffers.py)."""
        dtype = np.dtype(dtype)
        size = int(np.prod(shape, dtype=np.int64))
        pooled = self.root.pooled
        if pool and pooled is not None and self.w.depth == 1 and size * dtype.itemsize >= \
                buffers.MIN_BYTES:
            param = f"_pool{len(pooled)}"
            pooled.append((param, size, dtype))
            self.w.line(f"{name} = {param}" if len(shape) == 1 else
                        f"{name} = {param}.reshape({shape})")
            return
        self.w.line(f"{name} = np.empty({shape}, dtype=np.{dtype.name})")
        if size * dtype.itemsize >= HUGE_PAGE_MIN_BYTES and huge_pages_available():
            self.root.huge_pages = True
            self.w.line(f"_huge_pages({name})")

    def comment_kernel(self, title: str, comps: list) -> None:
        self.w.line(f"# {title}")
        shown: dict = {}  # an ordered set
        given = set(self.ir.invars) | set(self.ir.constvars)
        for comp in comps:
            for e in _cone(comp, self.producer, self.plan.materialized, given,
                           plan_order(self.plan)) + [comp.eqn]:
                shown.setdefault(e, None)
        for e in shown:
            text = " ".join(self.comment_name(a) if isinstance(a, Var) else repr(a)
                            for a in e.inputs)
            params = ""
            if e.params and e.prim not in ELEMENTWISE_LIKE:
                params = "[" + ", ".join(f"{k}={_param_text(v)}" for k, v in e.params.items()) \
                    + "]"
            self.w.line(f"#   {self.comment_name(e.outs[0])}: {e.outs[0].aval} = "
                        f"{e.prim.name}{params} {text}")

    def loop_kernel(self, k: int, kernel: LoopKernel) -> None:
        comps = [c for s in kernel.stages for c in s.items]
        where = f"loop over {kernel.outer}" if kernel.outer else "straight-line"
        self.comment_kernel(f"kernel {k}: {where}", comps)
        stored = self.plan.stored
        # Arrays written by this kernel, and accumulators, exist before its loops.
        for comp in comps:
            v = comp.var
            if comp.mode == "write" and v.aval.shape:
                self.alloc(v)
            elif comp.mode == "accumulate":
                init = _REDUCE_INIT[comp.eqn.prim](v.aval.dtype)
                if v.aval.shape:
                    self.alloc(v)
                    self.fill(v, init)
                else:
                    self.w.line(f"{self.name(v)} = {init}")
                    self.values[v] = ("scalar", self.name(v))
            elif comp.mode == "row" and v in stored and kernel.outer:
                self.alloc(v)
        outer_vars = [f"i{d}" for d in range(len(kernel.outer))]
        how = self.can_parallelize(kernel) if self.parallel else None
        parallel = how is not None
        # "chunks": accumulators summed across the outer loop get one partial row per
        # chunk of it (`chunk_partials`), added up after the loop.
        self.chunk_parts = self.chunk_partials(kernel, comps) if how == "chunks" else {}
        self.row_cache = {}
        row_allocs = []
        for v, first_stage in kernel.row_cache.items():
            buf = self.fresh(self.name(v) + "_row")
            self.row_cache[v] = (buf, first_stage)
            inner = kernel.stages[first_stage].inner
            row_allocs.append(f"{buf} = np.empty({tuple(inner)}, dtype=np.{v.aval.dtype.name})")
        if not parallel:  # one scratch row for the whole loop; per row under prange
            for line in row_allocs:
                self.w.line(line)
        if self.chunk_parts:
            self.open_chunked_loops(outer_vars, kernel.outer)
        else:
            self.open_loops(outer_vars, kernel.outer, parallel)
        if parallel:
            for line in row_allocs:
                self.w.line(line)
        row_locals = []
        self.n_outer = len(outer_vars)
        for s_index, stage in enumerate(kernel.stages):
            idx = _loop_vars(kernel.outer, stage.inner)
            inner_vars = idx[len(outer_vars):]
            self.stage_index, self.stage_idx = s_index, tuple(idx)
            for comp in stage.items:
                if comp.mode == "row":
                    acc = self.name(comp.var) if not kernel.outer else \
                        self.fresh(self.name(comp.var))
                    self.w.line(f"{acc} = {_REDUCE_INIT[comp.eqn.prim](comp.var.aval.dtype)}")
                    if _nan_flagged(comp):
                        self.w.line(f"{acc}_nan = False")
                    comp_acc = acc
                    row_locals.append((comp, comp_acc))
            if inner_vars:
                self.w.hoist = (len(self.w.lines), self.w.depth, len(self.w.memo) - 1)
                self.inner_locals = set()
            self.open_loops(inner_vars, stage.inner)
            for comp in stage.items:
                v = comp.var
                if comp.mode == "write":
                    value = self.inline(comp.eqn, idx)
                    if v.aval.shape:
                        self.w.line(f"{self.name(v)}[{', '.join(idx)}] = {value}")
                    else:
                        self.w.line(f"{self.name(v)} = {value}")
                        self.values[v] = ("scalar", self.name(v))
                    self.w.remember((v, tuple(idx)), f"{self.name(v)}[{', '.join(idx)}]"
                                    if v.aval.shape else self.name(v))
                else:
                    value = self.read(comp.eqn.inputs[0], idx)
                    dtype = v.aval.dtype
                    if comp.mode == "row" and _nan_flagged(comp):
                        # max/min that LLVM vectorizes, with NaN tracked on the side
                        # (np.maximum on scalars costs 4-5x more per element).
                        acc = next(a for c, a in row_locals if c is comp)
                        fn = "max" if comp.eqn.prim is rd.reduce_max_p else "min"
                        self.w.line(f"{acc} = {fn}({acc}, {value})")
                        self.w.line(f"{acc}_nan |= {value} != {value}")
                    elif comp.mode == "row":
                        acc = next(a for c, a in row_locals if c is comp)
                        self.w.line(f"{acc} = {self.combine(comp.eqn.prim, acc, value, dtype)}")
                    else:
                        axes = comp.eqn.params["axes"]
                        kept = [i for d, i in enumerate(idx) if d not in axes]
                        target = f"{self.name(v)}[{', '.join(kept)}]" if kept else \
                            self.name(v)
                        if v in self.chunk_parts:  # this chunk's row, or its scalar local
                            part, local = self.chunk_parts[v]
                            at = ", ".join(["_chunk"] + kept)
                            self.w.line(f"{local or f'{part}[{at}]'} += {value}")
                        elif not kept and comp.eqn.prim is rd.reduce_sum_p and parallel:
                            self.w.line(f"{target} += {value}")  # a form prange reduces
                        elif not kept:
                            self.w.line(f"{target} = "
                                        f"{self.combine(comp.eqn.prim, target, value, dtype)}")
                        else:  # vectorizes across the kept axes as it is
                            self.w.line(f"{target} = "
                                        f"{_combine(comp.eqn.prim, target, value, dtype)}")
            self.close_loops(inner_vars)
            self.w.hoist = None
            for comp in stage.items:
                if comp.mode == "row":
                    acc = next(a for c, a in row_locals if c is comp)
                    if _nan_flagged(comp):
                        with self.w.block(f"if {acc}_nan:"):
                            self.w.line(f"{acc} = math.nan")
                    if kernel.outer:
                        self.w.remember((comp.var, tuple(outer_vars)), acc)
                        if comp.var in stored:
                            self.w.line(f"{self.name(comp.var)}[{', '.join(outer_vars)}] = {acc}")
                    else:
                        self.values[comp.var] = ("scalar", acc)
        if self.chunk_parts:
            self.close_loops(outer_vars)
            for part, local in self.chunk_parts.values():
                if local:  # a scalar sum: this chunk's local, kept in a register
                    self.w.line(f"{part}[_chunk] = {local}")
            self.close_loops(["_chunk"])
            self.add_chunk_parts()
        else:
            self.close_loops(outer_vars)
        self.chunk_parts = {}

    def can_parallelize(self, kernel: LoopKernel) -> str | None:
        """How to spread the outermost loop over threads, if it is large enough: "rows"
        (prange over it) when no two iterations update the same accumulator element
        (scalar sums are reductions Numba parallelizes), "chunks" when sums run across it
        (column sums, the gradient of a matrix-vector product: each thread adds its chunk
        of rows into a partial row of its own), None to stay serial."""
        if not kernel.outer:
            return None
        work = int(np.prod(kernel.outer, dtype=np.int64)) * max(
            int(np.prod(s.inner, dtype=np.int64)) for s in kernel.stages)
        if work < PARALLEL_MIN_ITERATIONS or kernel.outer[0] < 2:
            return None
        how = "rows"
        for stage in kernel.stages:
            for comp in stage.items:
                if comp.mode != "accumulate":
                    continue
                if not comp.var.aval.shape:
                    if comp.eqn.prim is not rd.reduce_sum_p:
                        return None
                elif 0 in comp.eqn.params["axes"]:
                    # partial rows pay when they are small beside the work they split
                    if comp.eqn.prim is not rd.reduce_sum_p or \
                            comp.var.aval.size * CHUNK_PARTS_MAX > work // 8:
                        return None
                    how = "chunks"
        return how

    def chunk_partials(self, kernel: LoopKernel, comps) -> dict:
        """Zeroed partial buffers (a row per chunk) for the accumulators summed across the
        outer loop, array sums over axis 0 and scalar sums: var -> (buffer, the local a
        scalar sum keeps within a chunk, or None)."""
        parts = {}
        for comp in comps:
            v = comp.var
            if comp.mode != "accumulate" or (v.aval.shape and
                                             0 not in comp.eqn.params["axes"]):
                continue
            part = self.fresh(self.name(v) + "_parts")
            shape = (CHUNK_PARTS_MAX,) + tuple(v.aval.shape)
            self.w.line(f"{part} = np.zeros({shape}, dtype=np.{v.aval.dtype.name})")
            parts[v] = (part, None if v.aval.shape else self.fresh(self.name(v) + "_chunk"))
        return parts

    def open_chunked_loops(self, outer_vars, outer) -> None:
        """prange over chunks of the outermost loop (a fixed count, so that the sums do not
        depend on the number of threads), then each chunk's rows."""
        n = outer[0]
        self.used_prange = True
        self.w.line(f"_chunks = {min(CHUNK_PARTS_MAX, n)}")
        self.open_loops(["_chunk"], ["_chunks"], parallel=True)
        for v, (_, local) in self.chunk_parts.items():
            if local:
                self.w.line(f"{local} = {_REDUCE_INIT[rd.reduce_sum_p](v.aval.dtype)}")
        self.w.line(f"for {outer_vars[0]} in range(_chunk * {n} // _chunks, "
                    f"(_chunk + 1) * {n} // _chunks):")
        self.w.depth += 1
        self.w.memo.append({})
        self.open_loops(outer_vars[1:], outer[1:])

    def add_chunk_parts(self) -> None:
        """Each accumulator += the sum of its chunks' partial rows (in chunk order)."""
        for v, (part, _) in self.chunk_parts.items():
            name = self.name(v)
            self.w.line("for _chunk in range(_chunks):")
            self.w.depth += 1
            if v.aval.shape:
                loop_vars = [f"i{d}" for d in range(v.aval.ndim)]
                self.open_loops(loop_vars, v.aval.shape)
                at = ", ".join(loop_vars)
                self.w.line(f"{name}[{at}] += {part}[_chunk, {at}]")
                self.close_loops(loop_vars)
            else:
                self.w.line(f"{name} += {part}[_chunk]")
            self.w.depth -= 1

    def open_loops(self, loop_vars, shape, parallel: bool = False) -> None:
        for k, (var, n) in enumerate(zip(loop_vars, shape)):
            if parallel and k == 0:
                self.used_prange = True
                self.w.line(f"for {var} in numba.prange({n}):")
            else:
                self.w.line(f"for {var} in range({n}):")
            self.w.depth += 1
            self.w.memo.append({})

    def close_loops(self, loop_vars) -> None:
        for _ in loop_vars:
            self.w.memo.pop()
            self.w.depth -= 1

    def fill(self, v: Var, value: str) -> None:
        vars_ = [f"i{d}" for d in range(v.aval.ndim)]
        self.open_loops(vars_, v.aval.shape)
        self.w.line(f"{self.name(v)}[{', '.join(vars_)}] = {value}")
        self.close_loops(vars_)

    def call_kernel(self, k: int, kernel: CallKernel) -> None:
        comp = kernel.comp
        if comp.kind == "view":
            self.w.line(f"# kernel {k}: view")
            self.w.line(f"{self.name(comp.var)} = "
                        f"{view_expr(comp.eqn, self.array_of(comp.eqn.inputs[0]))}")
            self.values[comp.var] = ("array", self.name(comp.var))
            return
        self.comment_kernel(f"kernel {k}: {comp.eqn.prim.name}", [comp])
        prim = comp.eqn.prim
        if prim is la.dot_general_p:
            self.dot(comp)
        elif prim is ix.scatter_add_p:
            self.scatter_add(comp)
        elif prim in (rd.cumsum_p, rd.cumprod_p, rd.cumlinrec_p):
            self.cumulative(comp)
        elif prim is so.argsort_p:
            self.argsort(comp)
        elif prim is so.searchsorted_p:
            self.searchsorted(comp)
        elif prim is numba_call_p:
            self.numba_call(comp)
        elif prim in dc.DECOMPOSITIONS:
            self.decomposition(comp)
        elif prim is ff.fft_p:
            self.fft(comp)
        elif prim is cf.scan_p:
            self.scan(k, comp)
        elif prim in (cf.while_p, cf.while_record_p):
            self.while_loop(k, comp)
        elif prim is cf.replay_p:
            self.replay(k, comp)
        elif prim is cf.cond_p:
            self.cond(k, comp)
        elif prim in (cf.checkpoint_p, cf.call_p):
            outs = self.sub_program(k, comp.eqn.params["body"], "c",
                                    [self.binding(a) for a in comp.eqn.inputs])
            self.bind_outputs(comp.eqn.outs, outs)
        else:
            self.arg_reduce(comp)

    # -- control flow: bodies are planned and written in place ---------------------------
    def binding(self, atom) -> tuple:
        """How a sub-program reads one of this program's values."""
        if isinstance(atom, Literal):
            return ("scalar", literal(atom.value, atom.aval.dtype))
        kind, name = self.values[atom]
        if kind == "rows":
            return ("array", f"{name[0]}[{name[1]}]") if atom.aval.shape else \
                ("scalar", f"{name[0]}[{name[1]}]")
        return (kind, name)

    def sub_program(self, k: int, ir, tag: str, bindings: list,
                    rows: dict | None = None) -> list[str]:
        """Write `ir` here with its inputs bound; returns expressions of its outputs.

        `rows` maps output positions to the array rows the caller stores them in: array
        outputs the body computes are written there directly (no per-step allocation);
        `self.last_in_place` says which positions were.
        """
        from .plan import make_plan
        child = ModuleWriter(make_plan(ir, split=False), self.fastmath, False, parent=self,
                             prefix=f"{self.prefix}{tag}{k}_")
        counts: dict = {}
        for a in ir.outs:
            counts[a] = counts.get(a, 0) + 1
        for i, row in (rows or {}).items():
            out = ir.outs[i]
            if isinstance(out, Var) and out.aval.shape and counts[out] == 1 \
                    and out not in ir.invars:
                child.targets[out] = row
        # The body's values get their own memo scope: the same IR object can be emitted
        # twice in one scope (jacfwd makes one checkpoint per basis vector sharing one body
        # IR), and the second emission must not reuse the first one's locals.
        self.w.memo.append({})
        try:
            outs = child.emit_program(bindings)
        finally:
            self.w.memo.pop()
        self.last_in_place = {i for i, a in enumerate(ir.outs) if a in child.in_place}
        return outs

    def emit_program(self, bindings: list) -> list[str]:
        for v, b in zip(self.ir.invars, bindings):
            self.values[v] = b
        self.register_consts()
        self.emit_kernels()
        return [literal(a.value, a.aval.dtype) if isinstance(a, Literal) else
                self.array_of(a) for a in self.ir.outs]

    def emit_kernels(self, kernels: list | None = None) -> None:
        """Write `kernels` (default: all of the plan's). Their indices in comments and local
        names count from the first one, so equal kernel runs print equal text."""
        for k, kernel in enumerate(self.plan.kernels if kernels is None else kernels):
            if isinstance(kernel, CallKernel):
                self.call_kernel(k, kernel)
            else:
                self.loop_kernel(k, kernel)

    def register_consts(self) -> None:
        for v, val in zip(self.ir.constvars, self.ir.constvals):
            name = self.name(v)
            self.root.consts.append((name, val))
            self.values[v] = ("array", name)

    def bind_outputs(self, outs: list, exprs: list) -> None:
        for v, e in zip(outs, exprs):
            self.values[v] = ("array" if v.aval.shape else "scalar", e)

    def carry_locals(self, outs, inits) -> list[str]:
        names = []
        for v, init in zip(outs, inits):
            name = self.name(v)
            value = self.array_of(init) if not isinstance(init, Literal) else \
                literal(init.value, init.aval.dtype)
            if v.aval.shape:
                value = f"np.ascontiguousarray({value})"
            self.w.line(f"{name} = {value}")
            names.append(name)
        return names

    def spare_buffers(self, outs, names) -> dict:
        """Double buffering for array carries: the body writes the next carry into a spare
        buffer, then the two swap (no allocation per step). The carry starts as a copy, so
        the caller's array is never written."""
        spares = {}
        for v, name in zip(outs, names):
            if v.aval.shape:
                self.w.line(f"{name} = {name}.copy()")
                spares[name] = f"{name}_next"
                self.spare_shapes[spares[name]] = tuple(v.aval.shape)
                self.w.line(f"{spares[name]} = np.empty_like({name})")
        return spares

    def carry_rows(self, names, spares) -> dict:
        return {j: spares[name] for j, name in enumerate(names) if name in spares}

    def update_carries(self, names, spares, exprs) -> None:
        """New carries: swap the buffers the body wrote in place, assign the others.

        Once some carry swaps, its old buffer becomes a spare the next step writes, so no
        other carry may keep a reference to it (`(a, b) -> (b, f(a))`, or a cond returning
        a carry): the other array carries are then copied into their own spares and swap
        too, so every carry only ever holds its own two buffers."""
        swapping = any(name in spares and j in self.last_in_place
                       for j, name in enumerate(names))
        targets, values = [], []
        for j, (name, expr) in enumerate(zip(names, exprs)):
            if name in spares and swapping and j not in self.last_in_place and expr != name:
                rank = len(self.spare_shapes[spares[name]])
                loop_vars = [f"u{d}" for d in range(rank)]
                self.open_loops(loop_vars, self.spare_shapes[spares[name]])
                self.w.line(f"{spares[name]}[{', '.join(loop_vars)}] = "
                            f"{expr}[{', '.join(loop_vars)}]")
                self.close_loops(loop_vars)
                targets += [name, spares[name]]
                values += [spares[name], name]
            elif name in spares and j in self.last_in_place:
                targets += [name, spares[name]]
                values += [spares[name], name]
            else:
                targets.append(name)
                values.append(expr)
        self.assign(targets, values)

    def assign(self, names: list[str], exprs: list[str]) -> None:
        if not names:
            return
        if len(names) == 1:
            self.w.line(f"{names[0]} = {exprs[0]}")
        else:
            self.w.line(f"{', '.join(names)} = {', '.join(exprs)}")

    def scan(self, k: int, comp: Computation) -> None:
        eqn, p = comp.eqn, comp.eqn.params
        nc, nk, n = p["num_consts"], p["num_carry"], p["length"]
        consts, carry, xs = eqn.inputs[:nc], eqn.inputs[nc:nc + nk], eqn.inputs[nc + nk:]
        carry_names = self.carry_locals(eqn.outs[:nk], carry)
        spares = self.spare_buffers(eqn.outs[:nk], carry_names)
        ys = eqn.outs[nk:]
        for y in ys:
            self.alloc(y)
        t = f"t{self.depth}"
        order = f"range({n} - 1, -1, -1)" if p["reverse"] else f"range({n})"
        with self.w.block(f"for {t} in {order}:"):
            bindings = [self.binding(a) for a in consts]
            bindings += [("array" if v.aval.shape else "scalar", name)
                         for v, name in zip(eqn.outs[:nk], carry_names)]
            for x in xs:
                base = self.array_of(x)
                bindings.append(("rows", (base, t)) if x.aval.ndim > 1 else
                                ("scalar", f"{base}[{t}]"))
            rows = {nk + j: f"{self.values[y][1]}[{t}]" for j, y in enumerate(ys)}
            rows.update(self.carry_rows(carry_names, spares))
            outs = self.sub_program(k, p["body"], "s", bindings, rows)
            for j, (y, expr) in enumerate(zip(ys, outs[nk:])):  # before the carries change
                if nk + j not in self.last_in_place:
                    self.store_step(y, t, expr)
            self.update_carries(carry_names, spares, outs[:nk])
        for v, name in zip(eqn.outs[:nk], carry_names):
            self.values[v] = ("array" if v.aval.shape else "scalar", name)

    def store_step(self, y: Var, t: str, expr: str) -> None:
        """ys[t] = value, with explicit loops for array values (no slice assignment)."""
        name = self.values[y][1]
        shape = y.aval.row.shape if isinstance(y.aval, TapeType) else y.aval.shape[1:]
        if not shape:
            self.w.line(f"{name}[{t}] = {expr}")
            return
        loop_vars = [f"u{d}" for d in range(len(shape))]
        self.open_loops(loop_vars, shape)
        src = f"{expr}[{', '.join(loop_vars)}]" if expr.isidentifier() or "[" in expr else expr
        self.w.line(f"{name}[{', '.join([t] + loop_vars)}] = {src}")
        self.close_loops(loop_vars)

    def while_loop(self, k: int, comp: Computation) -> None:
        """`while True:` with the condition's program and a break; a recording loop also
        appends each step's residuals to tapes that double in size when full."""
        eqn, p = comp.eqn, comp.eqn.params
        ncc, nbc = p["cond_nconsts"], p["body_nconsts"]
        cc, bc, carry = eqn.inputs[:ncc], eqn.inputs[ncc:ncc + nbc], eqn.inputs[ncc + nbc:]
        nk = len(carry)
        record = eqn.prim is cf.while_record_p
        carry_names = self.carry_locals(eqn.outs[:nk], carry)
        spares = self.spare_buffers(eqn.outs[:nk], carry_names)
        carry_bind = [("array" if v.aval.shape else "scalar", name)
                      for v, name in zip(eqn.outs[:nk], carry_names)]
        limit = p.get("max_iterations")
        steps = self.name(eqn.outs[nk]) if record else self.fresh(f"{self.prefix}steps")
        tapes = [(v, self.name(v)) for v in eqn.outs[nk + 1:]] if record else []
        cap = self.fresh(f"{self.prefix}capacity")
        if record or limit is not None:
            self.w.line(f"{steps} = 0")
        if tapes:
            self.w.line(f"{cap} = 16")
            for v, name in tapes:
                self.w.line(f"{name} = np.empty(({cap}, {_dims(v.aval.row.shape)}), "
                            f"dtype=np.{v.aval.dtype.name})")
        with self.w.block("while True:"):
            (pred,) = self.sub_program(k, p["cond_ir"], "wc",
                                       [self.binding(a) for a in cc] + carry_bind)
            stop = f"not {pred}" if limit is None else f"not {pred} or {steps} >= {limit}"
            with self.w.block(f"if {stop}:"):
                self.w.line("break")
            if tapes:
                with self.w.block(f"if {steps} == {cap}:"):
                    self.w.line(f"{cap} *= 2")
                    for v, name in tapes:
                        grown = self.fresh(name + "_grown")
                        self.w.line(f"{grown} = np.empty(({cap}, {_dims(v.aval.row.shape)}), "
                                    f"dtype=np.{v.aval.dtype.name})")
                        rows = [f"u{d}" for d in range(v.aval.ndim)]
                        self.open_loops(rows, [steps] + list(v.aval.row.shape))
                        self.w.line(f"{grown}[{', '.join(rows)}] = {name}[{', '.join(rows)}]")
                        self.close_loops(rows)
                        self.w.line(f"{name} = {grown}")
            rows = {nk + j: f"{name}[{steps}]" for j, (_, name) in enumerate(tapes)}
            rows.update(self.carry_rows(carry_names, spares))
            outs = self.sub_program(k, p["body_ir"], "wb",
                                    [self.binding(a) for a in bc] + carry_bind, rows)
            for j, ((v, name), expr) in enumerate(zip(tapes, outs[nk:])):
                self.values[v] = ("array", name)
                if nk + j not in self.last_in_place:
                    self.store_step(v, steps, expr)
            self.update_carries(carry_names, spares, outs[:nk])
            if record or limit is not None:
                self.w.line(f"{steps} += 1")
        for v, name in zip(eqn.outs[:nk], carry_names):
            self.values[v] = ("array" if v.aval.shape else "scalar", name)
        if record:
            self.values[eqn.outs[nk]] = ("scalar", steps)

    def replay(self, k: int, comp: Computation) -> None:
        """The recorded steps of a while loop, forwards or backwards: a for loop over the
        tape rows."""
        eqn, p = comp.eqn, comp.eqn.params
        nc, nk = p["num_consts"], p["num_carry"]
        steps = self.read(eqn.inputs[0], [])
        consts, carry = eqn.inputs[1:1 + nc], eqn.inputs[1 + nc:1 + nc + nk]
        tapes = eqn.inputs[1 + nc + nk:]
        carry_names = self.carry_locals(eqn.outs, carry)
        spares = self.spare_buffers(eqn.outs, carry_names)
        t = f"t{self.depth}"
        order = f"range({steps} - 1, -1, -1)" if p["reverse"] else f"range({steps})"
        with self.w.block(f"for {t} in {order}:"):
            bindings = [self.binding(a) for a in consts]
            bindings += [("array" if v.aval.shape else "scalar", name)
                         for v, name in zip(eqn.outs, carry_names)]
            for tape in tapes:
                base = self.array_of(tape)
                bindings.append(("rows", (base, t)) if tape.aval.row.shape else
                                ("scalar", f"{base}[{t}]"))
            outs = self.sub_program(k, p["body"], "r", bindings,
                                    self.carry_rows(carry_names, spares))
            self.update_carries(carry_names, spares, outs)
        for v, name in zip(eqn.outs, carry_names):
            self.values[v] = ("array" if v.aval.shape else "scalar", name)

    def cond(self, k: int, comp: Computation) -> None:
        eqn = comp.eqn
        branches = eqn.params["branches"]
        index = self.read(eqn.inputs[0], [])
        args = [self.binding(a) for a in eqn.inputs[1:]]
        names = [self.name(v) for v in eqn.outs]
        for b, branch in enumerate(branches):
            if b == 0:
                header = f"if {index} <= 0:" if len(branches) > 1 else "if True:"
            elif b == len(branches) - 1:
                header = "else:"
            else:
                header = f"elif {index} == {b}:"
            with self.w.block(header):
                outs = self.sub_program(k, branch, f"b{b}", list(args))
                self.assign(names, [f"np.ascontiguousarray({o})" if v.aval.shape else o
                                    for v, o in zip(eqn.outs, outs)])
        for v, name in zip(eqn.outs, names):
            self.values[v] = ("array" if v.aval.shape else "scalar", name)

    def array_of(self, atom) -> str:
        """The whole value of `atom` as an expression (an array name, a view or a scalar)."""
        if isinstance(atom, Literal):
            return literal(atom.value, atom.aval.dtype)
        kind, name = self.values[atom]
        if kind == "rows":
            return f"{name[0]}[{name[1]}]"
        return name

    def dot(self, comp: Computation) -> None:
        """A matrix product: one BLAS gemm call per (batch) product, straight on the
        operands' memory (a transposed operand is a transpose flag, not a copy)."""
        eqn = comp.eqn
        lhs, rhs = eqn.inputs
        (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
        out = comp.var
        name = self.name(out)
        a, b = self.array_of(lhs), self.array_of(rhs)
        sa, sb = lhs.aval.shape, rhs.aval.shape
        lf = [d for d in range(len(sa)) if d not in lc and d not in lb]
        rf = [d for d in range(len(sb)) if d not in rc and d not in rb]
        size = lambda dims, s: int(np.prod([s[d] for d in dims], dtype=np.int64))  # noqa: E731
        m, kk, n = size(lf, sa), size(lc, sa), size(rf, sb)
        nb = size(lb, sa)
        dtype = out.aval.dtype
        if not dtypes.is_inexact(dtype) or kk == 0 or nb * m * kk * n <= TINY_PRODUCT:
            return self.dot_loops(comp)
        a2, a_t = self.as_matrix(a, sa, list(lb) + lf + list(lc),
                                 (nb, m, kk) if lb else (m, kk))
        b2, b_t = self.as_matrix(b, sb, list(rb) + list(rc) + rf,
                                 (nb, kk, n) if lb else (kk, n))
        shape = (nb, m, n) if lb else (m, n)
        tmp = name if tuple(out.aval.shape) == shape else self.fresh(name + "_mat")
        self.empty(tmp, shape, dtype)
        if m and n:
            with self.threaded_blas(2.0 * nb * m * kk * n):
                if lb:
                    with self.w.block(f"for i0 in range({nb}):"):
                        self.gemm(f"{a2}[i0]", a_t, f"{b2}[i0]", b_t, f"{tmp}[i0]", m, kk,
                                  n, dtype)
                else:
                    self.gemm(a2, a_t, b2, b_t, tmp, m, kk, n, dtype)
        if out.aval.shape == ():
            self.w.line(f"{name} = {tmp}[0, 0]")
            self.values[out] = ("scalar", name)
            return
        if tmp != name:
            self.w.line(f"{name} = {tmp}.reshape({tuple(out.aval.shape)})")
        self.values[out] = ("array", name)

    @contextlib.contextmanager
    def threaded_blas(self, flops: float):
        """Lines written inside run with BLAS on every core when the call is big enough."""
        threads = _blas_thread_count() if flops >= BLAS_THREAD_FLOPS else 1
        if threads > 1:
            self.root.blas_threads = True
            self.w.line(f"_blas_threads({threads})")
        yield
        if threads > 1:
            self.w.line("_blas_threads(1)")

    def gemm(self, a: str, a_t: bool, b: str, b_t: bool, c: str, m: int, k: int, n: int,
             dtype) -> None:
        """c (m, n; C order) = a (m, k) @ b (k, n), each C order or (if `_t`) Fortran order:
        a BLAS dot, matrix-vector or matrix-matrix product, straight on the operands' memory.

        BLAS is column-major, where a C-order matrix reads as its transpose: so BLAS computes
        c^T = b^T a^T, with b first. Numba's `numba_xx*` helpers reach SciPy's BLAS; calling
        them directly costs one typed call per product, where `np.dot` expanded Numba's
        whole implementation (layout checks, copies) at every call site. A product with a
        vector operand must call gemv (or dot): gemm would repack the matrix on every call."""
        kind = _blas_kind_code(dtype)
        self.root.blas_dtypes.add(np.dtype(dtype).name)
        one, zero = (f"_ptr({literal(v, dtype)})" for v in (1, 0))
        N, T = ord("n"), ord("t")
        if m == 1 and n == 1:
            self.w.line(f"_xxdot({kind}, 0, {k}, {a}.ctypes, {b}.ctypes, {c}.ctypes)")
        elif n == 1:  # c = a @ b: a (m, k) stored C order is the column-major k x m a^T
            self.w.line(f"_xxgemv({kind}, {N if a_t else T}, {m if a_t else k}, "
                        f"{k if a_t else m}, {one}, {a}.ctypes, {m if a_t else k}, "
                        f"{b}.ctypes, {zero}, {c}.ctypes)")
        elif m == 1:  # c^T = b^T a^T
            self.w.line(f"_xxgemv({kind}, {T if b_t else N}, {k if b_t else n}, "
                        f"{n if b_t else k}, {one}, {b}.ctypes, {k if b_t else n}, "
                        f"{a}.ctypes, {zero}, {c}.ctypes)")
        else:
            self.w.line(f"_xxgemm({kind}, {ord('T') if b_t else ord('N')}, "
                        f"{ord('T') if a_t else ord('N')}, {n}, {m}, {k}, {one}, "
                        f"{b}.ctypes, {k if b_t else n}, {a}.ctypes, {m if a_t else k}, "
                        f"{zero}, {c}.ctypes, {n})")

    def as_matrix(self, name: str, shape, perm, target) -> tuple[str, bool]:
        """`name` permuted by `perm` and reshaped to `target`, as cheaply as possible, and
        whether the result is in Fortran order (a transposed view) rather than C order."""
        if list(perm) == list(range(len(shape))):
            if tuple(shape) == tuple(target):
                return name, False
            return f"{name}.reshape({tuple(target)})", False
        if len(shape) == 2 and list(perm) == [1, 0] and len(target) == 2:
            return f"{name}.T", True
        return (f"np.ascontiguousarray({name}.transpose({tuple(perm)})).reshape("
                f"{tuple(target)})", False)

    def dot_loops(self, comp: Computation) -> None:
        """Plain loops for integer products and empty contractions."""
        eqn = comp.eqn
        lhs, rhs = eqn.inputs
        (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
        out = comp.var
        sa, sb = lhs.aval.shape, rhs.aval.shape
        lf = [d for d in range(len(sa)) if d not in lc and d not in lb]
        rf = [d for d in range(len(sb)) if d not in rc and d not in rb]
        name = self.name(out)
        acc = self.fresh(name)
        ov = [f"i{d}" for d in range(out.aval.ndim)]
        cv = [f"j{d}" for d in range(len(lc))]
        if out.aval.shape:
            self.alloc(out)
        self.open_loops(ov, out.aval.shape)
        self.w.line(f"{acc} = {literal(0, out.aval.dtype)}")
        self.open_loops(cv, [sa[d] for d in lc])
        ia, ib = [None] * len(sa), [None] * len(sb)
        pos = 0
        for d_l, d_r in zip(lb, rb):
            ia[d_l] = ib[d_r] = ov[pos]
            pos += 1
        for d in lf:
            ia[d] = ov[pos]
            pos += 1
        for d in rf:
            ib[d] = ov[pos]
            pos += 1
        for k, (d_l, d_r) in enumerate(zip(lc, rc)):
            ia[d_l] = ib[d_r] = cv[k]
        self.w.line(f"{acc} = {acc} + {self.read(lhs, ia)} * {self.read(rhs, ib)}")
        self.close_loops(cv)
        if out.aval.shape:
            self.w.line(f"{name}[{', '.join(ov)}] = {acc}")
        else:
            self.w.line(f"{name} = {acc}")
        self.close_loops(ov)
        self.values[out] = ("array" if out.aval.shape else "scalar", name)

    def scatter_add(self, comp: Computation) -> None:
        operand, indices, updates = comp.eqn.inputs
        out = comp.var
        name = self.name(out)
        # Control flow outputs may be another value's buffer (a cond branch or a checkpoint
        # returning its operand, a loop carry that is an xs row or a const): never written.
        reuse = (isinstance(operand, Var) and operand in self.values
                 and self.values[operand][0] == "array" and self.uses.get(operand) == 1
                 and operand not in self.ir.outs and operand in self.plan.materialized
                 and operand not in self.plan.views
                 and self.producer[operand].prim not in CONTROL_PRIMS)
        if reuse:  # accumulate in place: the operand has no other reader
            self.w.line(f"{name} = {self.values[operand][1]}")
            self.values[out] = ("array", name)
        else:
            self.alloc(out)
            ov = [f"i{d}" for d in range(out.aval.ndim)]
            self.open_loops(ov, out.aval.shape)
            self.w.line(f"{name}[{', '.join(ov)}] = {self.read(operand, ov)}")
            self.close_loops(ov)
        nb = indices.aval.ndim - 1
        k = indices.aval.shape[-1]
        uv = [f"i{d}" for d in range(updates.aval.ndim)]
        self.open_loops(uv, updates.aval.shape)
        coords = []
        for j in range(k):
            c = self.read(indices, uv[:nb] + [j])
            coords.append(f"min(max({c}, 0), {out.aval.shape[j] - 1})")
        target = f"{name}[{', '.join(coords + uv[nb:])}]"
        self.w.line(f"{target} += {self.read(updates, uv)}")
        self.close_loops(uv)

    def cumulative(self, comp: Computation) -> None:
        eqn = comp.eqn
        out = comp.var
        name = self.name(out)
        axis, reverse = eqn.params["axis"], eqn.params["reverse"]
        shape = out.aval.shape
        self.alloc(out)
        others = [d for d in range(len(shape)) if d != axis]
        ov = {d: f"i{d}" for d in others}
        self.open_loops([ov[d] for d in others], [shape[d] for d in others])
        carry = self.fresh(name)
        self.w.line(f"{carry} = {literal(1 if eqn.prim is rd.cumprod_p else 0, out.aval.dtype)}")
        n = shape[axis]
        rng = f"range({n} - 1, -1, -1)" if reverse else f"range({n})"
        with self.w.block(f"for k in {rng}:"):
            idx = [ov.get(d, "k") for d in range(len(shape))]
            if eqn.prim is rd.cumsum_p:
                self.w.line(f"{carry} = {carry} + {self.read(eqn.inputs[0], idx)}")
            elif eqn.prim is rd.cumprod_p:
                self.w.line(f"{carry} = {carry} * {self.read(eqn.inputs[0], idx)}")
            else:
                a, b = self.read(eqn.inputs[0], idx), self.read(eqn.inputs[1], idx)
                self.w.line(f"{carry} = {a} * {carry} + {b}")
            self.w.line(f"{name}[{', '.join(idx)}] = {carry}")
        self.close_loops([ov[d] for d in others])

    def decomposition(self, comp: Computation) -> None:
        """Numba's np.linalg (LAPACK) per matrix of the stack; triangular solves by BLAS
        trsm (`_tri_solve`, in the module when used)."""
        eqn = comp.eqn
        prim = eqn.prim
        if any(0 in a.aval.shape for a in eqn.inputs):
            return self.empty_decomposition(eqn)
        batch = tuple(eqn.inputs[0].aval.shape[:-2])
        idx = [f"i{d}" for d in range(len(batch))]
        at = f"[{', '.join(idx)}]" if idx else ""
        ins = [f"np.ascontiguousarray({self.array_of(a)}{at})" for a in eqn.inputs]
        if prim is dc.triangular_solve_p:
            self.root.lapack_helpers.add("_tri_solve")
            kind = _blas_kind_code(eqn.inputs[0].aval.dtype)
            call = (f"_tri_solve({ins[0]}, {ins[1]}, {eqn.params['lower']}, "
                    f"{eqn.params['trans']}, {kind})")
        elif prim is dc.svd_p:  # Numba's svd always computes the vectors
            call = f"np.linalg.svd({ins[0]}, full_matrices={eqn.params['full_matrices']})"
            if not eqn.params["compute_uv"]:
                call += "[1]"
        elif prim is dc.qr_p and eqn.params["pivoting"]:
            self.root.lapack_helpers.add("_qr_pivoted")  # geqp3: not in Numba's np.linalg
            # Q's columns (m, or min(m, n)) read from the shape at run time: a constant would
            # be a literal argument, and Numba compiles the helper once per literal value
            a = self.array_of(eqn.inputs[0])
            cols = (f"{a}.shape[-2]" if eqn.params["full"]
                    else f"min({a}.shape[-2], {a}.shape[-1])")
            call = (f"_qr_pivoted({ins[0]}, {_blas_kind_code(eqn.inputs[0].aval.dtype)}, "
                    f"{cols})")
        elif prim is dc.qr_p and eqn.params["full"]:
            self.root.lapack_helpers.add("_qr_complete")
            call = f"_qr_complete({ins[0]}, {_blas_kind_code(eqn.inputs[0].aval.dtype)})"
        elif prim is dc.eig_p and not dtypes.is_complex(eqn.inputs[0].aval.dtype):
            self.root.lapack_helpers.add("_eig_real")  # Numba's eig refuses complex pairs
            kind = _blas_kind_code(eqn.inputs[0].aval.dtype)
            out = np.dtype(eqn.outs[0].aval.dtype).name
            call = (f"_eig_real({ins[0]}, {kind}, np.empty(0, dtype=np.{out}))"
                    + ("" if eqn.params["vectors"] else "[0]"))
        elif prim is dc.eig_p:
            call = f"np.linalg.{'eig' if eqn.params['vectors'] else 'eigvals'}({ins[0]})"
        else:
            call = f"np.linalg.{prim.name}({', '.join(ins)})"
        outs = list(eqn.outs)
        with self.threaded_blas(_decomposition_flops(eqn)):
            if not batch:
                names = [self.name(v) for v in outs]
                self.w.line(f"{', '.join(names)} = {call}")
                for v, name in zip(outs, names):
                    if v.aval.ndim >= 2:  # LAPACK's results may be in Fortran order; views
                        # and the kernels after assume C order (a no-op when it is)
                        self.w.line(f"{name} = np.ascontiguousarray({name})")
                self.bind_outputs(outs, names)
                return
            for v in outs:
                self.alloc(v)
            self.open_loops(idx, batch)
            parts = [self.fresh(self.name(v)) for v in outs]
            self.w.line(f"{', '.join(parts)} = {call}")
            for v, part in zip(outs, parts):
                # element loops, not `out[i] = part`: Numba's array assignment compiles its
                # broadcast check and error text, ~2.5 s the first time in a process
                js = [f"j{d}" for d in range(v.aval.ndim - len(batch))]
                self.open_loops(js, v.aval.shape[len(batch):])
                self.w.line(f"{self.name(v)}[{', '.join(idx + js)}] = "
                            f"{part}{'[' + ', '.join(js) + ']' if js else ''}")
                self.close_loops(js)
            self.close_loops(idx)

    def empty_decomposition(self, eqn) -> None:
        """A decomposition with an empty operand: Numba's np.linalg rejects empty arrays,
        and the results depend on the shapes alone (empty arrays, or NumPy's values such as
        slogdet's (1, 0) or the identity vh of an SVD with no rows), so they are written as
        constants, computed by the primitive's NumPy rule on zeros of the operands' shapes."""
        from ..core import impl_rules
        if all(0 in v.aval.shape for v in eqn.outs):  # e.g. a solve with no right-hand side
            results = [np.empty(v.aval.shape, v.aval.dtype) for v in eqn.outs]
        else:  # the matrix itself is empty
            zeros = [np.zeros(a.aval.shape, a.aval.dtype) for a in eqn.inputs]
            results = impl_rules[eqn.prim](*zeros, **eqn.params)
            results = results if eqn.prim.multiple_results else [results]
        names = []
        for v, value in zip(eqn.outs, results):
            value = np.asarray(value, v.aval.dtype)
            name = self.name(v)
            dtype = np.dtype(v.aval.dtype).name
            if value.shape == ():
                self.w.line(f"{name} = np.{dtype}({value.item()!r})")
            elif value.size == 0:
                self.w.line(f"{name} = np.empty({tuple(value.shape)}, dtype=np.{dtype})")
            else:
                self.w.line(f"{name} = np.array({value.ravel().tolist()!r}, "
                            f"dtype=np.{dtype}).reshape({tuple(value.shape)})")
            names.append(name)
        self.bind_outputs(list(eqn.outs), names)

    # -- fft (primitives/fft.py): np.fft in the kernel, compiled by rocket-fft -----------
    def fft(self, comp: Computation) -> None:
        """One np.fft call over the trailing axes (rocket-fft registers np.fft for Numba);
        a result with no elements is an empty array."""
        eqn = comp.eqn
        out, (x,) = comp.var, eqn.inputs
        name = self.name(out)
        if 0 in out.aval.shape:
            self.w.line(f"{name} = np.empty({tuple(out.aval.shape)}, "
                        f"dtype=np.{np.dtype(out.aval.dtype).name})")
        else:
            ff.require_compiled_fft()
            self.w.line("# np.fft in compiled code: the rocket-fft package")
            operand = f"np.ascontiguousarray({self.array_of(x)})"
            self.w.line(f"{name} = {ff.numba_text(operand, x.aval.ndim, **eqn.params)}")
        self.values[out] = ("array", name)
    # -- end fft ------------------------------------------------------------------------

    def numba_call(self, comp: Computation) -> None:
        """The user's Numba function called on the operands; array results are checked
        against the declared shapes (a mismatch raises, never reads out of bounds)."""
        eqn = comp.eqn
        fn = eqn.params["name"]
        self.root.externals.add(fn)
        res = self.fresh("res")
        self.w.line(f"{res} = {fn}({', '.join(self.array_of(a) for a in eqn.inputs)})")
        parts = [res] if len(eqn.outs) == 1 else [f"{res}[{i}]" for i in range(len(eqn.outs))]
        names = []
        for k, (v, part) in enumerate(zip(eqn.outs, parts)):
            name = self.name(v)
            dtype = np.dtype(v.aval.dtype).name
            if v.aval.shape:
                self.w.line(f"{name} = {part}")
                with self.w.block(f"if {name}.shape != {tuple(v.aval.shape)!r}:"):
                    self.w.line(f"raise ValueError('numba_call: output {k} of "
                                f"{eqn.params['kernel'].py_func.__name__} does not have the "
                                f"declared shape {tuple(v.aval.shape)}')")
            else:
                self.w.line(f"{name} = np.{dtype}({part})")
            names.append(name)
        self.bind_outputs(eqn.outs, names)

    def argsort(self, comp: Computation) -> None:
        """Each row along the axis copied into a buffer, then Numba's stable argsort."""
        eqn = comp.eqn
        out = comp.var
        name = self.name(out)
        axis = eqn.params["axis"]
        x = eqn.inputs[0]
        shape = x.aval.shape
        n = shape[axis]
        self.alloc(out)
        row = self.fresh(name)
        perm = self.fresh(name)
        self.w.line(f"{row} = np.empty({n}, dtype=np.{np.dtype(x.aval.dtype).name})")
        others = [d for d in range(len(shape)) if d != axis]
        ov = {d: f"i{d}" for d in others}
        self.open_loops([ov[d] for d in others], [shape[d] for d in others])
        with self.w.block(f"for k in range({n}):"):
            self.w.line(f"{row}[k] = {self.read(x, [ov.get(d, 'k') for d in range(len(shape))])}")
        self.w.line(f"{perm} = np.argsort({row}, kind='mergesort')")
        with self.w.block(f"for k in range({n}):"):
            idx = [ov.get(d, "k") for d in range(len(shape))]
            self.w.line(f"{name}[{', '.join(idx)}] = {perm}[k]")
        self.close_loops([ov[d] for d in others])

    def searchsorted(self, comp: Computation) -> None:
        """The sorted array copied once into a buffer, then one np.searchsorted per value."""
        eqn = comp.eqn
        out = comp.var
        name = self.name(out)
        a, v = eqn.inputs
        n = a.aval.shape[0]
        side = eqn.params["side"]
        buf = self.fresh(name)
        self.w.line(f"{buf} = np.empty({n}, dtype=np.{np.dtype(a.aval.dtype).name})")
        with self.w.block(f"for k in range({n}):"):
            self.w.line(f"{buf}[k] = {self.read(a, ['k'])}")
        shape = v.aval.shape
        if shape:
            self.alloc(out)
        ov = [f"i{d}" for d in range(len(shape))]
        self.open_loops(ov, shape)
        value = f"np.searchsorted({buf}, {self.read(v, ov)}, side='{side}')"
        target = f"{name}[{', '.join(ov)}]" if shape else name
        self.w.line(f"{target} = {cast(value, out.aval.dtype)}")
        self.close_loops(ov)
        self.values[out] = ("array" if shape else "scalar", name)

    def arg_reduce(self, comp: Computation) -> None:
        eqn = comp.eqn
        out = comp.var
        name = self.name(out)
        axis = eqn.params["axis"]
        x = eqn.inputs[0]
        shape = x.aval.shape
        better = ">" if eqn.prim is rd.argmax_p else "<"
        if out.aval.shape:
            self.alloc(out)
        kept = [d for d in range(len(shape)) if d != axis]
        kv = {d: f"i{d}" for d in kept}
        self.open_loops([kv[d] for d in kept], [shape[d] for d in kept])
        best, best_i = self.fresh(name), self.fresh(name)
        self.w.line(f"{best} = {self.read(x, [kv.get(d, 0) for d in range(len(shape))])}")
        self.w.line(f"{best_i} = 0")
        with self.w.block(f"for k in range(1, {shape[axis]}):"):
            v = self.read(x, [kv.get(d, "k") for d in range(len(shape))])
            # The first NaN wins, as in NumPy.
            with self.w.block(f"if ({v} {better} {best}) or ({v} != {v} and {best} == {best}):"):
                self.w.line(f"{best} = {v}")
                self.w.line(f"{best_i} = k")
        target = f"{name}[{', '.join(kv[d] for d in kept)}]" if kept else name
        self.w.line(f"{target} = {cast(best_i, out.aval.dtype)}")
        self.close_loops([kv[d] for d in kept])
        if not out.aval.shape:
            self.values[out] = ("scalar", name)
        else:
            self.values[out] = ("array", name)

    # -- the module -----------------------------------------------------------------------
    def function_body(self) -> tuple[list[str], list[str]]:
        ir = self.ir
        params = []
        for v in ir.invars:
            params.append(self.name(v))
            self.values[v] = ("array" if v.aval.shape else "scalar", self.name(v))
        self.register_consts()
        self.emit_kernels()
        outs = []
        for a in ir.outs:
            if isinstance(a, Literal):
                outs.append(literal(a.value, a.aval.dtype))
            elif a in ir.constvars or (a in ir.invars and a.aval.shape):
                # a copy: a caller's writes must not reach a constant or an argument
                outs.append(self.values[a][1] + ".copy()")
            elif a.aval.shape and a in self.producer and \
                    self.producer[a].prim in CONTROL_PRIMS:
                # A branch, checkpoint or loop carry may return a constant's buffer itself.
                outs.append(self.values[a][1] + ".copy()")
            else:
                outs.append(self.values[a][1])
        ret = outs[0] if len(outs) == 1 else "(" + ", ".join(outs) + ("," if len(outs) == 1
                                                                      else "") + ")"
        self.w.line(f"return {ret}" if outs else "return ()")
        return params, [name for name, _ in self.consts]


def view_expr(eqn: Eqn, base: str) -> str:
    """A contiguous slice or a reshape of the C-order array `base`, as a view: integer
    indices on the leading length-1 axes and one range (so that Numba types the view as
    C-contiguous), then a reshape to the slice's shape."""
    out_shape = tuple(eqn.outs[0].aval.shape)
    if eqn.prim is st.reshape_p:
        return f"{base}.reshape({out_shape})"
    start, limit = eqn.params["start"], eqn.params["limit"]
    lengths = [hi - lo for lo, hi in zip(start, limit)]
    d = next((i for i, n in enumerate(lengths) if n != 1), len(start) - 1)
    index = [str(lo) for lo in start[:d]] + [f"{start[d]}:{limit[d]}"]
    return f"{base}[{', '.join(index)}].reshape({out_shape})"


def _dims(shape) -> str:
    """Trailing dimensions for a shape tuple written after a leading one."""
    return ", ".join(map(str, shape))


def _param_text(value) -> str:
    """A parameter in a one-line comment (nested IRs are written out below it)."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, IR) for v in value):
        return "(" + ", ".join(f"<ir {v.name}>" for v in value) + ")"
    return f"<ir {value.name}>" if isinstance(value, IR) else format_param(value)


def _is_simple(expr: str) -> bool:
    """Array reads and constants need no local of their own."""
    return ("(" not in expr and " " not in expr) or expr.startswith("np.float") and \
        expr.count("(") == 1 and " " not in expr


_MATH_CALL = re.compile(r"\bmath\.(\w+)\(")


def _keep_float32(expr: str, dtype) -> str:
    """Python's `math` functions compute in float64: a float32 value made by one is rounded
    back at once, so float32 programs stay float32 (and their locals too)."""
    if np.dtype(dtype) == dtypes.float32 and "math." in expr:
        return f"np.float32({expr})"
    return expr

def _floor_divide_preamble(dtype_names) -> list[str]:
    """Float floor division as NumPy computes it (the quotient of a - fmod(a, b), rounded
    to the nearest whole number; a / b when b is 0), in the operands' own precision. Numba's
    np.floor_divide gives -inf for -inf // 2 (NumPy: nan), and Python's `//` has gone
    through an int64 floor in some Numba versions; integer `//` is right as it is."""
    lines = []
    for name in sorted(dtype_names):
        one, half = f"np.{name}(1.0)", f"np.{name}(0.5)"
        lines += ["@numba.njit(cache=True, inline='always', error_model='numpy')",
                  f"def _floor_divide_{name}(a, b):",
                  "    if b == 0:",
                  "        return a / b",
                  "    mod = np.fmod(a, b)",
                  "    div = (a - mod) / b",
                  "    if mod != 0 and (b < 0) != (mod < 0):",
                  f"        div = div - {one}",
                  "    if div != 0:",
                  "        whole = np.floor(div)",
                  f"        return whole + {one} if div - whole > {half} else whole",
                  "    return np.copysign(div, a / b)", "", ""]
    return lines


def _wrap_narrow_int(expr: str, dtype) -> str:
    """Numba computes integer arithmetic in int64: narrower results are cast back at once,
    so they wrap around as NumPy's do before anything else reads them."""
    if dtypes.is_int(dtype) and np.dtype(dtype).itemsize < 8:
        return cast(expr, dtype)
    return expr


def _integer_pow(x: str, y: int, dtype) -> str:
    if y == 0:
        return literal(1, dtype)
    if y < 0:
        p = _integer_pow(x, -y, dtype)
        if dtypes.is_complex(dtype):  # Numba's complex `/` raises for 0; NumPy: nan+nanj
            return f"({literal(1, dtype)} / {p} if {p} != 0 else complex(math.nan, math.nan))"
        return f"({literal(1, dtype)} / {p})"
    if y <= 4:
        return "(" + " * ".join([x] * y) + ")"
    return f"({x} ** {y})"


@dataclass
class Generated:
    """The code of one compiled program.

    `source` is the module `jit` imports: the whole program as one Numba function, or, for a
    program split into runs of kernels (`Plan.segments`), a Python driver that calls one
    compiled function per run. `segments` holds those functions' modules, (module name,
    source), each named by its content hash so that equal runs share one module. `consts`
    are the (name, array) constants the program takes after its inputs."""

    source: str
    consts: list
    segments: list = field(default_factory=list)
    pooled: list = field(default_factory=list)  # (length, dtype) of each buffer parameter

    @property
    def full_source(self) -> str:
        """Every module, the driver first."""
        parts = [self.source]
        for name, text in self.segments:
            parts.append(f"# ===== {name}.py =====\n{text}")
        return "\n\n".join(parts)


def generate(plan: Plan, fastmath=False, parallel=False) -> Generated:
    """The source of the program's module(s). No constant's value is in any source: its
    text, hence its cache key, depends on shapes and dtypes only."""
    if len(plan.segments) > 1:
        return _generate_split(plan, fastmath, parallel)
    mw = ModuleWriter(plan, fastmath, parallel)
    mw.enable_buffer_pool()
    params, const_params = mw.function_body()
    if mw.pooled and _may_raise(mw):  # written again, allocating its results itself
        mw = ModuleWriter(plan, fastmath, parallel)
        mw.pooled = []  # and none taken
        params, const_params = mw.function_body()
    lines = _module_header(f"Generated by tracejit from IR `{plan.ir.name}`: explicit loops "
                           "for Numba.")
    lines += _constants_header(const_params)
    lines += _njit_function(mw, params + const_params + [p for p, _, _ in mw.pooled],
                            fastmath)
    lines += _run_function(params, const_params, mw.pooled)
    return Generated("\n".join(lines) + "\n", list(zip(const_params,
                                                      (val for _, val in mw.consts))),
                     pooled=[(size, dtype) for _, size, dtype in mw.pooled])


def _may_raise(mw: ModuleWriter) -> bool:
    """Whether the kernel can raise: a `raise` of its own, NumPy linear algebra (LinAlgError),
    LAPACK helpers, or a user's Numba function. A raising Numba function never drops the
    references its locals held, so a buffer taken from the pool for it would stay pinned;
    such a kernel allocates its results only once it gets to them."""
    return bool(mw.externals or mw.lapack_helpers) or any(
        "raise " in line or "np.linalg." in line for line in mw.w.lines)


def _module_header(title: str, imports=("math", None, "numba", "numpy as np"),
                   note="Standalone: needs only numpy and numba. `run(*inputs)` returns the "
                        "outputs.") -> list[str]:
    lines = [f'"""{title}', "", note, '"""', ""]
    for imp in imports:
        lines.append(f"import {imp}" if imp else "")
    return lines + [""]


def _constants_header(const_names: list[str]) -> list[str]:
    if not const_names:
        return []
    return ["# Arrays the program closed over are arguments, not text: `run` takes them as",
            "# `constants` (in this order), or loads the .npz file saved beside this module.",
            f"CONSTANTS = {tuple(const_names)!r}", ""]


def _fastmath_text(fastmath) -> str:
    if isinstance(fastmath, (set, frozenset)):
        return "{" + ", ".join(repr(f) for f in sorted(fastmath)) + "}"
    return repr(fastmath)


def _njit_function(mw: ModuleWriter, params: list[str], fastmath) -> list[str]:
    """`kernel(*params)`, compiled by Numba, with the body `mw` wrote."""
    lines = []
    if mw.blas_dtypes:
        lines += _BLAS_DECLARATIONS
    if mw.huge_pages:
        lines += _HUGE_PAGES
    if mw.special_used:
        lines += special.preamble(mw.special_used)
    if mw.complex_used:
        lines += complex_math.preamble(mw.complex_used)
    if mw.externals:
        lines += external.preamble(mw.externals)
    for name in sorted(mw.lapack_helpers):
        lines += _LAPACK_HELPERS[name]
    if mw.floor_divides:
        lines += _floor_divide_preamble(mw.floor_divides)
    if mw.blas_threads:
        lines += _BLAS_THREADS
    par = ", parallel=True" if mw.used_prange else ""
    if any("cmath." in line for line in mw.w.lines):
        lines += ["import cmath", ""]
    math_preamble = mw.math.preamble()
    if math_preamble:
        lines += [math_preamble]
    if mw.reduction_ops:
        lines += _reduction_preamble(sorted(mw.reduction_ops))
    lines += ["", f"@numba.njit(cache=True, error_model='numpy', "
                  f"fastmath={_fastmath_text(fastmath)}{par})",
              f"def kernel({', '.join(params)}):"]
    return lines + mw.w.lines + ["", ""]


def _decomposition_flops(eqn) -> float:
    """Rough floating-point operations of a decomposition over its whole stack (the leading
    terms of the LAPACK counts: enough to tell a 2000 x 2000 factorization from a 3 x 3)."""
    *batch, m, n = eqn.inputs[0].aval.shape
    count = float(np.prod(batch)) if batch else 1.0
    rhs = eqn.inputs[1].aval.shape[-1] if len(eqn.inputs) > 1 else 0
    k = min(m, n)
    per = {"cholesky": n ** 3 / 3, "triangular_solve": n * n * rhs,
           "solve": 2 * n ** 3 / 3 + 2 * n * n * rhs, "inv": 2 * n ** 3,
           "slogdet": 2 * n ** 3 / 3, "eigh": 9 * n ** 3, "svd": 4 * m * n * k + 8 * k ** 3,
           "eig": 25 * n ** 3,
           "qr": 2 * m * n * k}.get(eqn.prim.name, 2 * m * n * k)
    return count * per


_BLAS_THREADS = """\
def _openblas_set_threads_address():
    import ctypes
    import glob
    import os
    import scipy
    libs = os.path.join(os.path.dirname(os.path.dirname(scipy.__file__)), "scipy.libs")
    for path in sorted(glob.glob(os.path.join(libs, "libscipy_openblas*.so*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol in ("scipy_openblas_set_num_threads", "openblas_set_num_threads"):
            fn = getattr(lib, symbol, None)
            if fn is not None:
                return ctypes.cast(fn, ctypes.c_void_p).value
    return None


_blas_threads_address = _openblas_set_threads_address()
if _blas_threads_address is not None:
    import llvmlite.binding as _llb_threads
    _llb_threads.add_symbol("tracejit_blas_set_threads", _blas_threads_address)
    _blas_threads = numba.types.ExternalFunction(
        "tracejit_blas_set_threads", numba.types.void(numba.types.intc))
else:
    @numba.njit(cache=True)
    def _blas_threads(n):  # no OpenBLAS found: the thread count stays as it is
        pass
""".splitlines() + ["", ""]


# op(a)^-1 b for triangular a (op = transpose when `trans`): BLAS trsm from SciPy's OpenBLAS
# (the same library Numba's matmul helpers call), found through scipy.linalg.cython_blas and
# registered under a fixed symbol name at import, so the cached machine code links by name.
# The arrays are C-ordered: in BLAS's column-major view b is bᵀ (k × n) and a is aᵀ, so the
# solve is xᵀ op(a)ᵀ = bᵀ from the right, with the triangle's name swapped. For a 2000 × 2000
# right-hand side the substitution loop this replaces took 5.7 s (32.6 s transposed) and
# SciPy's trsm 0.097 s.
_TRI_SOLVE = """\
def _blas_address(name):
    import ctypes
    from scipy.linalg import cython_blas
    capsule = cython_blas.__pyx_capi__[name]
    api = ctypes.pythonapi
    api.PyCapsule_GetName.restype = ctypes.c_char_p
    api.PyCapsule_GetName.argtypes = [ctypes.py_object]
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return api.PyCapsule_GetPointer(capsule, api.PyCapsule_GetName(capsule))


import llvmlite.binding as _llb_trsm

_llb_trsm.add_symbol("tracejit_dtrsm", _blas_address("dtrsm"))
_llb_trsm.add_symbol("tracejit_strsm", _blas_address("strsm"))
_llb_trsm.add_symbol("tracejit_ztrsm", _blas_address("ztrsm"))
_llb_trsm.add_symbol("tracejit_ctrsm", _blas_address("ctrsm"))
_trsm_sig = numba.types.void(*([numba.types.voidptr] * 11))
_dtrsm = numba.types.ExternalFunction("tracejit_dtrsm", _trsm_sig)
_strsm = numba.types.ExternalFunction("tracejit_strsm", _trsm_sig)
_ztrsm = numba.types.ExternalFunction("tracejit_ztrsm", _trsm_sig)
_ctrsm = numba.types.ExternalFunction("tracejit_ctrsm", _trsm_sig)


@numba.njit(cache=True)
def _tri_solve(a, b, lower, trans, kind):
    n, k = b.shape
    x = np.ascontiguousarray(b).copy()
    if n == 0 or k == 0:
        return x
    a = np.ascontiguousarray(a)
    chars = np.array([82, 85 if lower else 76, 84 if trans else 78, 78], dtype=np.uint8)
    dims = np.array([k, n, n, k], dtype=np.int32)  # m, n, lda, ldb
    alpha = np.ones(1, dtype=a.dtype)
    if kind == 100:
        _dtrsm(chars[0:].ctypes, chars[1:].ctypes, chars[2:].ctypes, chars[3:].ctypes,
               dims[0:].ctypes, dims[1:].ctypes, alpha.ctypes, a.ctypes, dims[2:].ctypes,
               x.ctypes, dims[3:].ctypes)
    elif kind == 122:
        _ztrsm(chars[0:].ctypes, chars[1:].ctypes, chars[2:].ctypes, chars[3:].ctypes,
               dims[0:].ctypes, dims[1:].ctypes, alpha.ctypes, a.ctypes, dims[2:].ctypes,
               x.ctypes, dims[3:].ctypes)
    elif kind == 99:
        _ctrsm(chars[0:].ctypes, chars[1:].ctypes, chars[2:].ctypes, chars[3:].ctypes,
               dims[0:].ctypes, dims[1:].ctypes, alpha.ctypes, a.ctypes, dims[2:].ctypes,
               x.ctypes, dims[3:].ctypes)
    else:
        _strsm(chars[0:].ctypes, chars[1:].ctypes, chars[2:].ctypes, chars[3:].ctypes,
               dims[0:].ctypes, dims[1:].ctypes, alpha.ctypes, a.ctypes, dims[2:].ctypes,
               x.ctypes, dims[3:].ctypes)
    return x
""".splitlines() + ["", ""]


# The complete QR of a matrix with more rows than columns (Numba's np.linalg.qr gives the
# reduced one): LAPACK's geqrf, then orgqr/ungqr for all m columns of Q, as NumPy does,
# through the wrappers Numba's helper library exports.
_QR_COMPLETE = """\
_qr_sig = numba.types.intc(numba.types.char, numba.types.intp, numba.types.intp,
                           numba.types.voidptr, numba.types.intp, numba.types.voidptr)
_xgeqrf = numba.types.ExternalFunction("numba_ez_geqrf", _qr_sig)
_xxgqr = numba.types.ExternalFunction("numba_ez_xxgqr", numba.types.intc(
    numba.types.char, numba.types.intp, numba.types.intp, numba.types.intp,
    numba.types.voidptr, numba.types.intp, numba.types.voidptr))


@numba.njit(cache=True)
def _qr_complete(a, kind):
    m, n = a.shape
    q = np.zeros((m, m), dtype=a.dtype).T  # Fortran order, as LAPACK reads it
    for j in range(n):
        for i in range(m):
            q[i, j] = a[i, j]
    tau = np.empty(n, dtype=a.dtype)
    info = _xgeqrf(kind, m, n, q.ctypes, m, tau.ctypes)
    r = np.zeros((m, n), dtype=a.dtype)
    for j in range(n):
        for i in range(min(j + 1, m)):
            r[i, j] = q[i, j]
    info = min(info, _xxgqr(kind, m, m, n, q.ctypes, m, tau.ctypes))
    if info < 0:
        raise ValueError("qr: LAPACK rejected an argument")
    return np.ascontiguousarray(q), r
""".splitlines() + ["", ""]


# eig of a real matrix with complex results, as NumPy computes it: LAPACK's geev on the
# real matrix, its pairs (wr ± i wi, columns re and im of vr) unpacked into complex values
# and vectors v = re ± i im.
_EIG_REAL = """\
_geev = numba.types.ExternalFunction("numba_ez_rgeev", numba.types.intc(
    numba.types.char, numba.types.char, numba.types.char, numba.types.intp,
    numba.types.voidptr, numba.types.intp, numba.types.voidptr, numba.types.voidptr,
    numba.types.voidptr, numba.types.intp, numba.types.voidptr, numba.types.intp))


@numba.njit(cache=True)
def _eig_real(a, kind, like):
    n = a.shape[0]
    work = np.ascontiguousarray(a.T).copy()  # a's entries in Fortran order
    wr = np.empty(n, dtype=a.dtype)
    wi = np.empty(n, dtype=a.dtype)
    vl = np.empty((n, 1), dtype=a.dtype)
    vr = np.empty((n, n), dtype=a.dtype)  # C order: row j is LAPACK's column j
    info = _geev(kind, 78, 86, n, work.ctypes, n, wr.ctypes, wi.ctypes, vl.ctypes, 1,
                 vr.ctypes, n)
    if info != 0:
        raise np.linalg.LinAlgError("eig: the eigenvalue iteration did not converge")
    w = np.empty(n, dtype=like.dtype)
    v = np.empty((n, n), dtype=like.dtype)
    for j in range(n):
        w[j] = wr[j] + 1j * wi[j]
    j = 0
    while j < n:
        if wi[j] == 0 or j + 1 == n:
            for i in range(n):
                v[i, j] = vr[j, i]
            j += 1
        else:
            for i in range(n):
                v[i, j] = vr[j, i] + 1j * vr[j + 1, i]
                v[i, j + 1] = vr[j, i] - 1j * vr[j + 1, i]
            j += 2
    return w, v
""".splitlines() + ["", ""]


# The column-pivoted QR, as SciPy computes it: LAPACK's geqp3 (not among the wrappers of
# Numba's helper library: SciPy's `cython_lapack` entries, registered under fixed symbol
# names at import so the cached machine code links by name), then orgqr/ungqr through
# Numba's wrapper for Q's `cols` columns (m for the full factorization, else min(m, n); R
# has as many rows), from the one factorization. The workspace is queried first
# (lwork = -1), as SciPy does; jpvt starts at zero (every column free), comes back 1-based.
_QR_PIVOTED = """\
import llvmlite.binding as _llb_geqp3
from numba.extending import get_cython_function_address as _lapack_address

for _geqp3_x in "dszc":
    _llb_geqp3.add_symbol("tracejit_" + _geqp3_x + "geqp3", _lapack_address(
        "scipy.linalg.cython_lapack", _geqp3_x + "geqp3"))
_geqp3_real = numba.types.void(*([numba.types.voidptr] * 9))
_geqp3_complex = numba.types.void(*([numba.types.voidptr] * 10))  # and a real workspace
_dgeqp3 = numba.types.ExternalFunction("tracejit_dgeqp3", _geqp3_real)
_sgeqp3 = numba.types.ExternalFunction("tracejit_sgeqp3", _geqp3_real)
_zgeqp3 = numba.types.ExternalFunction("tracejit_zgeqp3", _geqp3_complex)
_cgeqp3 = numba.types.ExternalFunction("tracejit_cgeqp3", _geqp3_complex)
_xxgqr_p = numba.types.ExternalFunction("numba_ez_xxgqr", numba.types.intc(
    numba.types.char, numba.types.intp, numba.types.intp, numba.types.intp,
    numba.types.voidptr, numba.types.intp, numba.types.voidptr))


@numba.njit(cache=True)
def _qr_pivoted(a, kind, cols):
    m, n = a.shape
    k = min(m, n)
    w = np.zeros((max(n, cols), m), dtype=a.dtype).T  # Fortran order, room for Q
    for j in range(n):
        for i in range(m):
            w[i, j] = a[i, j]
    jpvt = np.zeros(n, dtype=np.int32)
    tau = np.empty(k, dtype=a.dtype)
    rwork = np.empty(2 * n, dtype=np.float64)  # complex kinds' 2n reals (room for c's too)
    dims = np.empty(5, dtype=np.int32)  # m, n, lda, lwork, info
    dims[0], dims[1], dims[2], dims[3], dims[4] = m, n, m, -1, 0
    work = np.empty(1, dtype=a.dtype)
    for attempt in range(2):  # the workspace query (lwork = -1), then the factorization
        if kind == 100:
            _dgeqp3(dims[0:].ctypes, dims[1:].ctypes, w.ctypes, dims[2:].ctypes,
                    jpvt.ctypes, tau.ctypes, work.ctypes, dims[3:].ctypes, dims[4:].ctypes)
        elif kind == 115:
            _sgeqp3(dims[0:].ctypes, dims[1:].ctypes, w.ctypes, dims[2:].ctypes,
                    jpvt.ctypes, tau.ctypes, work.ctypes, dims[3:].ctypes, dims[4:].ctypes)
        elif kind == 122:
            _zgeqp3(dims[0:].ctypes, dims[1:].ctypes, w.ctypes, dims[2:].ctypes,
                    jpvt.ctypes, tau.ctypes, work.ctypes, dims[3:].ctypes, rwork.ctypes,
                    dims[4:].ctypes)
        else:
            _cgeqp3(dims[0:].ctypes, dims[1:].ctypes, w.ctypes, dims[2:].ctypes,
                    jpvt.ctypes, tau.ctypes, work.ctypes, dims[3:].ctypes, rwork.ctypes,
                    dims[4:].ctypes)
        if attempt == 0:
            dims[3] = max(int(work[0].real), 3 * n + 1)
            work = np.empty(dims[3], dtype=a.dtype)
    if dims[4] != 0:
        raise ValueError("qr: LAPACK rejected an argument")
    r = np.zeros((cols, n), dtype=a.dtype)
    for j in range(n):
        for i in range(min(j + 1, m)):
            r[i, j] = w[i, j]
    p = np.empty(n, dtype=np.int32)
    for j in range(n):
        p[j] = jpvt[j] - 1
    if _xxgqr_p(kind, m, cols, k, w.ctypes, m, tau.ctypes) < 0:
        raise ValueError("qr: LAPACK rejected an argument")
    return np.ascontiguousarray(w[:, :cols]), r, p
""".splitlines() + ["", ""]


_LAPACK_HELPERS = {"_tri_solve": _TRI_SOLVE, "_qr_complete": _QR_COMPLETE,
                   "_qr_pivoted": _QR_PIVOTED, "_eig_real": _EIG_REAL}


def _blas_kind_code(dtype) -> int:
    """The BLAS/LAPACK type letter of `dtype` (d, s, z, c) as the char code helpers take."""
    return ord(_BLAS_KIND[np.dtype(dtype).name])


# madvise(MADV_HUGEPAGE) on the whole 2 MiB pages of a new array's buffer, before the
# kernel first writes it (a hint: contents and results are unchanged).
_HUGE_PAGES = """\
_madvise = numba.types.ExternalFunction('madvise', numba.types.intc(
    numba.types.intp, numba.types.intp, numba.types.intc))


@numba.njit(cache=True)
def _huge_pages(x):
    start = (x.ctypes.data + 2097151) & ~2097151
    end = (x.ctypes.data + x.nbytes) & ~2097151
    if end > start:
        _madvise(start, end - start, 14)
""".splitlines() + ["", ""]


# BLAS through Numba's helpers (they call SciPy's BLAS), column-major, pointers as void*:
# gemm (kind, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc),
# gemv (kind, trans, m, n, alpha, a, lda, x, beta, y), dot (kind, conjugate, n, x, y, out).
# `_ptr(v)` is the address of a stack slot holding v (alpha and beta), valid in the caller.
# BLAS's type letters; complex products use the plain (unconjugated) transpose flags.
_BLAS_KIND = {"float64": "d", "float32": "s", "complex128": "z", "complex64": "c"}

_BLAS_DECLARATIONS = """\
from numba.core import cgutils as _cgutils
from numba.extending import intrinsic as _intrinsic_b

_vp = numba.types.voidptr
_ip = numba.types.intp
_ch = numba.types.char
_xxgemm = numba.types.ExternalFunction('numba_xxgemm', numba.types.intc(
    _ch, _ch, _ch, _ip, _ip, _ip, _vp, _vp, _ip, _vp, _ip, _vp, _vp, _ip))
_xxgemv = numba.types.ExternalFunction('numba_xxgemv', numba.types.intc(
    _ch, _ch, _ip, _ip, _vp, _vp, _ip, _vp, _vp, _vp))
_xxdot = numba.types.ExternalFunction('numba_xxdot', numba.types.intc(
    _ch, _ch, _ip, _vp, _vp, _vp))


@_intrinsic_b
def _ptr(typingctx, x):
    if not isinstance(x, (numba.types.Float, numba.types.Complex)):
        return None

    def codegen(context, builder, sig, args):
        slot = _cgutils.alloca_once_value(builder, args[0])
        return builder.bitcast(slot, _cgutils.voidptr_t)

    return numba.types.voidptr(x), codegen
""".splitlines() + [""]


def _reduction_preamble(ops: list[str]) -> list[str]:
    """`_radd`/`_rmul`: a float add/multiply LLVM may reassociate. Reductions accumulate
    through them, so the loop vectorizer keeps several partial sums (as NumPy's pairwise
    sum does, the result is more accurate than one running sum, and faster)."""
    lines = ["# Reduction steps LLVM may reassociate (vector partial sums); nothing else is.",
             "from numba.core import types as _nb_types_r",
             "from numba.extending import intrinsic as _intrinsic_r", ""]
    for op in ops:
        lines += [
            "",
            "@_intrinsic_r",
            f"def _r{op}(typingctx, a, b):",
            "    if not (isinstance(a, _nb_types_r.Float) and a == b):",
            "        return None",
            "",
            "    def codegen(context, builder, sig, args):",
            f"        return builder.f{op}(args[0], args[1], flags=('reassoc',))",
            "",
            "    return a(a, b), codegen",
            "",
        ]
    return lines


def _run_function(params: list[str], const_names: list[str], pooled=()) -> list[str]:
    """`run(*inputs)`: the kernel's call with the constants and new big buffers (which
    tracejit itself passes from its buffer pool)."""
    buffers_list = [f"np.empty({size}, dtype=np.{dtype.name})" for _, size, dtype in pooled]
    buffers_text = "".join(", " + b for b in buffers_list)
    if not const_names:
        return [f"def run({', '.join(params)}):",
                '    """Run the compiled program on its flat inputs."""',
                f"    return kernel({', '.join(params + buffers_list)})"]
    return [
        f"def run({', '.join(params + ['constants=None'])}):",
        '    """Run the compiled program on its flat inputs (and the arrays in CONSTANTS)."""',
        "    if constants is None:",
        "        import os",
        "        with np.load(os.path.splitext(__file__)[0] + '.npz') as saved:",
        "            constants = [saved[name] for name in CONSTANTS]",
        f"    return kernel({', '.join(params)}, *constants{buffers_text})",
    ]


# -- programs split into several compiled functions ------------------------------------------

class _Canonical(dict):
    """Var -> name, handed out in order of first use: equal runs of kernels get equal
    names, hence equal source text and one compiled function."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def __missing__(self, v):
        name = f"{self.prefix}{len(self)}"
        self[v] = name
        return name


class _Reads(dict):
    """The values of one run of kernels: its own, plus those computed before it, which
    become its parameters (`p0, p1, ...` in order of first use) as they are read."""

    def __init__(self, available: dict):
        super().__init__()
        self.available = available  # Var -> kind ("array" | "scalar")
        self.params: list = []

    def __contains__(self, v) -> bool:
        return dict.__contains__(self, v) or v in self.available

    def __missing__(self, v):
        if v not in self.available:
            raise KeyError(v)
        entry = (self.available[v], f"p{len(self.params)}")
        self.params.append(v)
        self[v] = entry
        return entry


class SegmentWriter(ModuleWriter):
    """Writes one run of kernels as a function of the values it reads."""

    def __init__(self, plan: Plan, fastmath, parallel: bool, available: dict):
        super().__init__(plan, fastmath, parallel, names=_Canonical("x"))
        self.values = _Reads(available)

    def comment_name(self, v: Var) -> str:
        if v in self.values and not dict.__contains__(self.values, v):
            return self.values[v][1]  # computed before this run: a parameter
        return self.names[v]

    def register_consts(self) -> None:  # the program's constants are parameters too
        pass


def _generate_split(plan: Plan, fastmath, parallel) -> Generated:
    from .build import source_key

    ir = plan.ir
    available = {v: "array" if v.aval.shape else "scalar" for v in ir.invars + ir.constvars}
    writers, views = [], []
    for start, stop in plan.segments:
        # Views of values computed before this run are taken by the driver: the run's code
        # then does not depend on where they start (`xs[t]` differs in every step).
        kernels, driver_views = [], []
        for kern in plan.kernels[start:stop]:
            comp = getattr(kern, "comp", None)
            if comp is not None and comp.kind == "view" and comp.eqn.inputs[0] in available:
                driver_views.append(comp.eqn)
                available[comp.var] = "array"
            else:
                kernels.append(kern)
        sw = SegmentWriter(plan, fastmath, parallel, dict(available))
        sw.emit_kernels(kernels)
        writers.append(sw)
        views.append(driver_views)
        for v, (kind, _) in dict.items(sw.values):
            if v not in available:
                available[v] = kind
    # What each run returns: its values that later runs, the driver's views or the
    # program's outputs read.
    needed = {a for a in ir.outs if isinstance(a, Var)}
    outputs = [None] * len(writers)
    for i in reversed(range(len(writers))):
        sw = writers[i]
        outputs[i] = [v for v in dict.keys(sw.values)
                      if v in needed and v not in sw.values.params]
        needed.update(sw.values.params)
        needed.update(e.inputs[0] for e in views[i])
    consts = [(plan.names[v], val) for v, val in zip(ir.constvars, ir.constvals)]
    names = {v: _safe(plan.names[v]) for v in plan.names}  # the driver's: the IR's names
    modules: dict[str, str] = {}  # module name -> source, in order of first call
    body: list[str] = []
    for (start, stop), sw, outs, driver_views in zip(plan.segments, writers, outputs, views):
        span = f"kernel {start}" if stop - start == 1 else f"kernels {start}-{stop - 1}"
        body.append(f"# {span}")
        body += [f"{names[e.outs[0]]} = {view_expr(e, names[e.inputs[0]])}"
                 for e in driver_views]
        if not sw.w.lines:
            continue
        sw.w.line("return (" + "".join(f"{sw.values[v][1]}, " for v in outs) + ")")
        args = [names[v] for v in sw.values.params]
        for _, val in sw.consts:  # constants of loop bodies
            args.append(f"k{len(consts)}")
            consts.append((args[-1], val))
        params = [f"p{i}" for i in range(len(sw.values.params))] + [n for n, _ in sw.consts]
        lines = _module_header("A run of kernels of a program generated by tracejit.",
                               note="Its driver calls `kernel` with the values the run reads "
                                    "and gets back those later runs read.")
        text = "\n".join(lines + _njit_function(sw, params, fastmath)).rstrip() + "\n"
        module = "tj_" + source_key(text)
        modules.setdefault(module, text)
        handle = f"_f{list(modules).index(module)}"
        call = f"{handle}({', '.join(args)})"
        body.append(f"{''.join(names[v] + ', ' for v in outs)}= {call}" if outs else call)
        for v in outs:
            if not isinstance(v.aval, TapeType) and not v.aval.shape and \
                    v.aval.dtype not in (dtypes.float64, dtypes.int64, dtypes.bool_):
                # Numba returns scalars as Python numbers: keep the dtype for the next run.
                body.append(f"{names[v]} = np.{v.aval.dtype.name}({names[v]})")
    results = []
    producers = plan_producers(plan)
    for a in ir.outs:
        if isinstance(a, Literal):
            results.append(f"np.{a.aval.dtype.name}({literal(a.value, a.aval.dtype)})")
        elif a.aval.shape and (a in ir.invars or a in ir.constvars or (
                a in producers and producers[a].prim in CONTROL_PRIMS)):
            results.append(names[a] + ".copy()")  # never the caller's or a constant's buffer
        else:
            results.append(names[a])
    body.append("return " + (results[0] if len(results) == 1 else
                             "(" + "".join(r + ", " for r in results) + ")"))
    params = [names[v] for v in ir.invars]
    const_params = [_safe(n) for n, _ in consts]
    lines = _module_header(
        f"Generated by tracejit from IR `{ir.name}`: a driver calling {len(modules)} "
        "compiled functions (in the modules beside this one) in turn.",
        imports=("importlib.util", "os", "sys", None, "numpy as np"))
    lines += _constants_header(const_params)
    lines += [
        "",
        "def _function(module_name):",
        '    """`kernel` of a module beside this file (already imported when tracejit runs',
        '    this program)."""',
        '    full_name = "tracejit_generated_" + module_name[3:]',
        "    module = sys.modules.get(full_name)",
        "    if module is None:",
        "        here = os.path.dirname(os.path.abspath(__file__))",
        "        spec = importlib.util.spec_from_file_location(",
        "            full_name, os.path.join(here, module_name + '.py'))",
        "        module = importlib.util.module_from_spec(spec)",
        "        sys.modules[full_name] = module",
        "        spec.loader.exec_module(module)",
        "    return module.kernel",
        "",
        "",
    ]
    lines += [f"_f{i} = _function({m!r})" for i, m in enumerate(modules)]
    lines += ["", "", f"def kernel({', '.join(params + const_params)}):"]
    lines += ["    " + line for line in body]
    lines += ["", ""] + _run_function(params, const_params)
    return Generated("\n".join(lines) + "\n", consts, list(modules.items()))


def plan_producers(plan: Plan) -> dict:
    """Var -> the equation that defines it (computed once per plan)."""
    cached = plan.__dict__.get("_producers")
    if cached is None:
        cached = plan.__dict__["_producers"] = {v: e for e in plan.ir.eqns for v in e.outs}
    return cached


def plan_order(plan: Plan) -> dict:
    """id(equation) -> its position in the program (computed once per plan)."""
    cached = plan.__dict__.get("_order")
    if cached is None:
        cached = plan.__dict__["_order"] = {id(e): i for i, e in enumerate(plan.ir.eqns)}
    return cached


def plan_uses(plan: Plan) -> dict:
    """Var -> how many equation inputs and program outputs read it (once per plan)."""
    cached = plan.__dict__.get("_uses")
    if cached is None:
        cached = {}
        for e in plan.ir.eqns:
            for a in e.inputs:
                if isinstance(a, Var):
                    cached[a] = cached.get(a, 0) + 1
        for a in plan.ir.outs:
            if isinstance(a, Var):
                cached[a] = cached.get(a, 0) + 1
        plan.__dict__["_uses"] = cached
    return cached
