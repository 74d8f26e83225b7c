"""The fusion pass: optimized IR -> loop plan.

Vocabulary:
- A *computation* is work that produces a value the program keeps: an array written
  elementwise (`write`), a reduction (`reduce`), or a call-like kernel (`call`: BLAS dot,
  scatter-add, cumulative ops, argmax/argmin).
- Every other equation (elementwise math, broadcasts, slices, pads, reshapes, transposes,
  gathers, ...) is *inlined*: recomputed inside the loop of each computation that reads it,
  at the index that computation needs. No array is ever written for such a value; this is
  the rematerialization rule (see docs/architecture.md).
- A *loop kernel* is a nest of outer loops (shape `outer`) around a sequence of *stages*;
  each stage is an inner loop nest (shape `inner`, possibly empty) whose body computes
  several computations together. A reduction over the trailing axes of a stage is a *row
  reduction*: its result is a local value that later stages of the same outer iteration read
  (softmax, logsumexp, norms: one pass per row, the row stays in cache). Other reductions
  *accumulate* into arrays/scalars that later kernels read.

Values are *materialized* (kept in arrays or scalars) only when they must be: program
outputs, operands of BLAS calls and gathers, results of reductions and calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import IR, Eqn, Literal, ShapedArray, Var, var_names
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
from .index import INLINABLE, input_reads

# Worth computing once per row and keeping in a scratch row rather than recomputing.
EXPENSIVE = {ew.exp_p, ew.expm1_p, ew.exp2_p, ew.log_p, ew.log1p_p, ew.log2_p, ew.log10_p,
             ew.sin_p, ew.cos_p, ew.tan_p, ew.asin_p, ew.acos_p, ew.atan_p, ew.sinh_p,
             ew.cosh_p, ew.tanh_p, ew.asinh_p, ew.acosh_p, ew.atanh_p, ew.logistic_p,
             ew.pow_p, ew.atan2_p, ew.hypot_p, ew.cbrt_p, ew.logaddexp_p}
REDUCE_PRIMS = {rd.reduce_sum_p, rd.reduce_max_p, rd.reduce_min_p, rd.reduce_prod_p}
MAX_INLINE_DEPTH = 64  # longest chain of inlined equations recomputed inside one loop body
# Most equations one loop kernel computes: Numba compiles a loop body in time that grows
# faster than its length (LLVM on one huge basic block), so a longer fused chain is cut
# into several loops, materializing arrays at the cuts.
MAX_KERNEL_SIZE = 256
# Control flow: real loops and branches whose bodies are planned and generated recursively.
CONTROL_PRIMS = {cf.cond_p, cf.scan_p, cf.while_p, cf.checkpoint_p, cf.call_p,
                 cf.while_record_p, cf.replay_p}
CALL_PRIMS = CONTROL_PRIMS | {la.dot_general_p, ix.scatter_add_p, rd.cumsum_p, rd.cumprod_p,
                              rd.cumlinrec_p, rd.argmax_p, rd.argmin_p, so.argsort_p,
                              so.searchsorted_p, numba_call_p, *dc.DECOMPOSITIONS,
                              ff.fft_p}


@dataclass(eq=False)
class Computation:
    kind: str  # "write" | "reduce" | "call" | "view"
    eqn: Eqn
    domain: tuple = ()  # the iteration space of its loop nest
    mode: str = ""  # reductions: "row" (per outer iteration) or "accumulate"

    @property
    def var(self) -> Var:
        return self.eqn.outs[0]


@dataclass(eq=False)
class Stage:
    inner: tuple
    items: list = field(default_factory=list)


@dataclass(eq=False)
class LoopKernel:
    outer: tuple
    stages: list = field(default_factory=list)
    # Expensive inlined values that several stages of one outer iteration read at the same
    # element: computed once per row into a row-sized scratch buffer (var -> first stage).
    row_cache: dict = field(default_factory=dict)
    size: int = 0  # equations its loop bodies compute
    block: int | None = None  # the repeated block its computations belong to (if any)
    computes: set = field(default_factory=set)  # the inlined values among them


@dataclass(eq=False)
class CallKernel:
    comp: Computation


@dataclass(eq=False)
class Plan:
    ir: IR
    kernels: list
    materialized: set  # Vars computed by a computation
    stored: set  # Vars kept in an array (or a function-level scalar) beyond their stage
    names: dict
    # Runs of kernels compiled as one function each: [(start, stop), ...]. One run for
    # most programs; big ones are split (see `choose_segments`).
    segments: list = field(default_factory=list)
    views: set = field(default_factory=set)  # materialized values that are views (no copy)

    def __str__(self) -> str:
        return format_plan(self)

    __repr__ = __str__

    def to_svg(self, path: str | None = None) -> str:
        """The plan drawn as an SVG document (returned; also written to `path`)."""
        from .draw import to_svg
        return to_svg(self, path)

    def to_dot(self) -> str:
        """The plan as Graphviz DOT text."""
        from .draw import to_dot
        return to_dot(self)


def _loop_vars(outer, inner):
    return [f"i{k}" for k in range(len(outer))] + [f"j{k}" for k in range(len(inner))]


class _Planner:
    def __init__(self, ir: IR):
        self.ir = ir
        self.producer: dict[Var, Eqn] = {v: e for e in ir.eqns for v in e.outs}
        self.given: set[Var] = set(ir.invars) | set(ir.constvars)
        self.materialized: set[Var] = set()
        self.kernels: list = []
        self.views: set[Var] = set()
        self._reads_memo: dict = {}
        self.block_of = {e: b for e, b in zip(ir.eqns, find_blocks(ir)) if b is not None}
        # var -> (kernel index, stage index, computation)
        self.where: dict[Var, tuple] = {}

    # -- materialization --------------------------------------------------------------
    def choose_materialized(self) -> None:
        needs = set()
        for a in self.ir.outs:
            if isinstance(a, Var) and a in self.producer:
                needs.add(a)
        # What one repeated block hands to another is materialized: no inlined cone crosses
        # a block boundary, so every copy of a block plans the same kernels.
        block_of = self.block_of
        for e in self.ir.eqns:
            for a in e.inputs:
                if isinstance(a, Var) and a in self.producer and \
                        block_of.get(self.producer[a]) != block_of.get(e):
                    needs.add(a)
        for e in self.ir.eqns:
            if e.prim in REDUCE_PRIMS or e.prim in CALL_PRIMS:
                needs.update(e.outs)
            if e.prim in (la.dot_general_p, numba_call_p, ff.fft_p, *dc.DECOMPOSITIONS) or \
                    e.prim in CONTROL_PRIMS:
                needs.update(a for a in e.inputs if isinstance(a, Var) and a in self.producer)
            if e.prim is ix.gather_p:
                op = e.inputs[0]
                if isinstance(op, Var) and op in self.producer:
                    needs.add(op)
            if e.prim is ix.scatter_add_p:
                # The operand is computed straight into the scatter's buffer by the loop
                # that makes it (unless it is a plain fill, which the scatter kernel writes).
                op = e.inputs[0]
                if isinstance(op, Var) and op in self.producer and not self.is_fill(op):
                    needs.add(op)
        # Inlined cones are walked recursively (here and by the code generator): a value more
        # than MAX_INLINE_DEPTH inlined equations deep is materialized, which bounds the
        # recursion (long unrolled elementwise chains) and the recomputation.
        depth: dict = {}
        for e in self.ir.eqns:
            v = e.outs[0]
            if v in needs or e.prim not in INLINABLE:
                continue
            d = 1 + max((depth.get(a, 0) for a in e.inputs if isinstance(a, Var)), default=0)
            if d > MAX_INLINE_DEPTH:
                needs.add(v)
                d = 0
            depth[v] = d
        unknown = [e.prim.name for e in self.ir.eqns
                   if e.prim not in INLINABLE | REDUCE_PRIMS | CALL_PRIMS]
        if unknown:
            raise NotImplementedError(f"the compiler has no loop rule for {sorted(set(unknown))}")
        # A value that must be materialized and is a contiguous slice or reshape (or a chain
        # of them) of a materialized array (e.g. `xs[t]` fed to a matmul) is a view of it:
        # no copy, no loop.
        base_of: dict = {}
        for e in self.ir.eqns:
            if is_contiguous_view(e) and isinstance(e.inputs[0], Var):
                base = e.inputs[0]
                if base in self.given or base in needs or base in base_of:
                    base_of[e.outs[0]] = base
        outs = {a for a in self.ir.outs if isinstance(a, Var)}
        for v in list(needs):
            while v in base_of and v not in self.views and v not in outs:
                self.views.add(v)
                needs.add(v)
                v = base_of[v]
        self.materialized = needs

    def is_fill(self, v) -> bool:
        eqn = self.producer.get(v)
        return (eqn is not None and eqn.prim is st.broadcast_in_dim_p
                and isinstance(eqn.inputs[0], Literal))

    def available(self, v) -> bool:
        return v in self.given or v in self.materialized

    # -- reads of a computation ---------------------------------------------------------
    def reads(self, comp: Computation, idx: list) -> list[tuple]:
        """(var, index or None if data-dependent) for every materialized value the
        computation's inlined cone reads, when computing element `idx` of its domain."""
        key = (id(comp), tuple(idx))
        if key not in self._reads_memo:  # comp kept beside its reads: its id stays unique
            self._reads_memo[key] = (comp, self._reads(comp, idx))
        return self._reads_memo[key][1]

    def _reads(self, comp: Computation, idx: list) -> list[tuple]:
        out: list[tuple] = []
        seen: set = set()

        def walk(atom, index):
            if isinstance(atom, Literal):
                return
            key = (atom, tuple(index) if index is not None else None)
            if key in seen:
                return
            seen.add(key)
            if self.available(atom) and atom is not comp.var:
                out.append((atom, index))
                return
            eqn = self.producer[atom]
            if index is None:  # data-dependent position: everything below is too
                for a in eqn.inputs:
                    walk(a, None)
                return
            if eqn.prim is ix.gather_p:
                walk(eqn.inputs[0], None)
            for branch in input_reads(eqn, index):
                for pos, sub in branch.reads.items():
                    walk(eqn.inputs[pos], sub)

        eqn = comp.eqn
        if comp.kind in ("call", "view"):  # call kernels read their operands anywhere
            for a in eqn.inputs:
                walk(a, None)
        elif comp.kind == "reduce":
            walk(eqn.inputs[0], idx)
        elif comp.kind == "write":
            if eqn.prim is ix.gather_p:
                walk(eqn.inputs[0], None)
            for branch in input_reads(eqn, idx):
                for pos, sub in branch.reads.items():
                    walk(eqn.inputs[pos], sub)
        return out

    def inlined_visits(self, comp: Computation, idx: list) -> set:
        """(var, index) of every inlined value computed for element `idx` of `comp`."""
        visits: set = set()

        def walk(atom, index):
            if isinstance(atom, Literal) or index is None:
                return
            key = (atom, tuple(index))
            if key in visits or (self.available(atom) and atom is not comp.var):
                return
            visits.add(key)
            eqn = self.producer[atom]
            if eqn.prim is ix.gather_p:
                return
            for branch in input_reads(eqn, index):
                for pos, sub in branch.reads.items():
                    walk(eqn.inputs[pos], sub)

        if comp.kind == "reduce":
            walk(comp.eqn.inputs[0], idx)
        elif comp.kind == "write":
            for branch in input_reads(comp.eqn, idx) if comp.eqn.prim is not ix.gather_p \
                    else []:
                for pos, sub in branch.reads.items():
                    walk(comp.eqn.inputs[pos], sub)
        return {(v, i) for v, i in visits if v is not comp.var}

    def choose_row_caches(self) -> None:
        for kernel in self.kernels:
            if not isinstance(kernel, LoopKernel) or not kernel.outer:
                continue
            first_seen: dict = {}
            for s_index, stage in enumerate(kernel.stages):
                if not stage.inner:
                    continue
                idx = tuple(_loop_vars(kernel.outer, stage.inner))
                seen_here = set()
                for comp in stage.items:
                    for v, index in self.inlined_visits(comp, list(idx)):
                        if index == idx and self.producer[v].prim in EXPENSIVE:
                            seen_here.add(v)
                for v in seen_here:
                    if v in first_seen:
                        first_stage = first_seen[v]
                        if kernel.stages[first_stage].inner == stage.inner:
                            kernel.row_cache.setdefault(v, first_stage)
                    else:
                        first_seen[v] = s_index

    # -- kernel formation ---------------------------------------------------------------
    def place(self, comp: Computation) -> None:
        """Put `comp` in the best kernel that can hold it: joining an existing loop first,
        then a new stage of a kernel with outer loops; the search goes back from the last
        kernel to the one that produces a value `comp` reads."""
        if comp.kind in ("call", "view"):
            self.kernels.append(CallKernel(comp))
            for v in comp.eqn.outs:
                self.where[v] = (len(self.kernels) - 1, 0, comp)
            return
        reads = self.reads_for_placement(comp)
        produced_by = {self.where[v][0] for v, _ in reads if v in self.where}
        # What the loop body must compute for it: its inlined cone, less what the kernel
        # computes already (a loop body computes each value once).
        cone = {v for v, _ in self.inlined_visits(comp, _loop_vars((), comp.domain))}
        best = None
        for k in reversed(range(len(self.kernels))):
            kernel = self.kernels[k]
            if isinstance(kernel, LoopKernel) and kernel.block == self.block_of.get(comp.eqn) \
                    and kernel.size + 1 + len(cone - kernel.computes) <= MAX_KERNEL_SIZE:
                for mode, inner in self.fits(kernel, comp):
                    how = self.check(k, comp, inner)
                    if how is None:
                        continue
                    score = 3 if how == "join" else (2 if kernel.outer else 1)
                    if best is None or score > best[0]:
                        best = (score, k, mode, inner, how)
                    break
            if k in produced_by:
                break
        if best is None:
            self.kernels.append(LoopKernel(self.fresh_outer(comp),
                                           block=self.block_of.get(comp.eqn)))
            k = len(self.kernels) - 1
            mode, inner = self.fits(self.kernels[k], comp)[0]
            how = self.check(k, comp, inner)
            assert how is not None, "a computation must fit a kernel made for it"
            best = (0, k, mode, inner, how)
        _, k, mode, inner, how = best
        self.add(k, comp, mode, inner, how)
        kernel = self.kernels[k]
        kernel.size += 1 + len(cone - kernel.computes)
        kernel.computes |= cone

    def fresh_outer(self, comp: Computation) -> tuple:
        s = comp.domain
        if comp.kind == "reduce":
            axes = comp.eqn.params["axes"]
            k = len(s) - len(axes)
            if axes == tuple(range(k, len(s))) and k > 0:
                return s[:k]  # row reduction: an outer loop over the kept axes
        return s

    def fits(self, kernel: LoopKernel, comp: Computation) -> list[tuple]:
        """(mode, inner shape) placements allowed by the shapes, preferred first."""
        s, o = comp.domain, kernel.outer
        if len(o) > len(s) or s[:len(o)] != o:
            return []
        inner = s[len(o):]
        if comp.kind == "reduce":
            axes = comp.eqn.params["axes"]
            options = []
            if axes == tuple(range(len(o), len(s))):
                options.append(("row", inner))
            options.append(("accumulate", inner))
            return options
        return [("write", inner)]

    def reads_for_placement(self, comp: Computation) -> list:
        domain = comp.domain
        return self.reads(comp, _loop_vars((), domain))

    def check(self, k_index: int, comp: Computation, inner: tuple) -> str | None:
        """Can `comp` run in kernel `k_index` with this inner shape? "join" (in its last
        stage), "stage" (as a new stage after it), or None."""
        kernel = self.kernels[k_index]
        last = kernel.stages[-1] if kernel.stages else None
        join = last is not None and last.inner == inner
        idx = _loop_vars(kernel.outer, inner)
        outer_vars = idx[:len(kernel.outer)]
        for v, index in self.reads(comp, idx):
            if v not in self.where:
                continue  # an input or constant
            pk, s_index, producer = self.where[v]
            if pk > k_index:
                return None
            if pk < k_index:
                continue  # computed before this kernel: any read is fine
            if producer.mode == "accumulate" or index is None:
                return None
            if producer.mode == "row":
                if list(index) != outer_vars:
                    return None
                if s_index == len(kernel.stages) - 1:
                    join = False
            else:  # a write of an earlier (or the last) stage
                if list(index[:len(outer_vars)]) != outer_vars:
                    return None
                if s_index == len(kernel.stages) - 1 and list(index) != idx:
                    join = False
        return "join" if join else "stage"

    def add(self, k_index: int, comp: Computation, mode: str, inner: tuple, how: str) -> None:
        kernel = self.kernels[k_index]
        comp.mode = mode
        if how == "join":
            kernel.stages[-1].items.append(comp)
        else:
            kernel.stages.append(Stage(inner, [comp]))
        self.where[comp.var] = (k_index, len(kernel.stages) - 1, comp)

    def run(self) -> Plan:
        self.choose_materialized()
        for eqn in self.ir.eqns:
            v = eqn.outs[0]
            if v not in self.materialized:
                continue
            if v in self.views:
                comp = Computation("view", eqn, v.aval.shape, "view")
            elif eqn.prim in REDUCE_PRIMS:
                comp = Computation("reduce", eqn, eqn.inputs[0].aval.shape)
            elif eqn.prim in CALL_PRIMS:
                comp = Computation("call", eqn, v.aval.shape, "call")
            else:
                comp = Computation("write", eqn, v.aval.shape, "write")
            self.place(comp)
        self.choose_row_caches()
        return Plan(self.ir, self.kernels, set(self.materialized), self.stored_values(),
                    var_names(self.ir), views=set(self.views))

    def stored_values(self) -> set:
        """Values that need an array/scalar beyond their own stage."""
        stored = set()
        for a in self.ir.outs:
            if isinstance(a, Var) and a in self.where:
                stored.add(a)
        for k_index, kernel in enumerate(self.kernels):
            comps = [kernel.comp] if isinstance(kernel, CallKernel) else \
                [c for st in kernel.stages for c in st.items]
            for comp in comps:
                if comp.kind in ("call", "view"):
                    stored.update(v for v, _ in self.reads(comp, [])
                                  if v in self.where)
                    stored.update(comp.eqn.outs)
                    continue
                outer = kernel.outer
                inner = next(st.inner for st in kernel.stages if comp in st.items)
                idx = _loop_vars(outer, inner)
                for v, index in self.reads(comp, idx):
                    if v not in self.where:
                        continue
                    pk, ps, producer = self.where[v]
                    if pk != k_index:
                        stored.add(v)
                    elif producer.mode == "write":
                        my_stage = next(i for i, st in enumerate(kernel.stages)
                                        if comp in st.items)
                        if ps != my_stage or list(index) != idx:
                            stored.add(v)
                if comp.mode in ("accumulate", "write"):
                    if comp.mode == "accumulate" or comp.var.aval.shape != ():
                        stored.add(comp.var)
        return stored


# -- repeated blocks: programs unrolled by a Python loop ---------------------------------------
#
# A Python loop traced S times leaves S copies of its body in the IR (and, in a gradient, S
# copies of its transposed body). Finding them lets the planner cut kernels at the copies'
# boundaries, materializing what one copy hands to the next: every copy then plans to the
# same kernels, prints the same code and shares one compiled function (`choose_segments`).

BLOCKS_MIN_EQNS = 120  # smaller programs compile fast as they are
MIN_BLOCK_REPEATS = 3
_CANDIDATE_PERIODS = 8  # how many next occurrences of an equation are tried as a period


def find_blocks(ir: IR) -> list:
    """Per equation, the index of the repeated block it belongs to, or None."""
    n = len(ir.eqns)
    blocks: list = [None] * n
    if n < BLOCKS_MIN_EQNS:
        return blocks
    ids: dict = {}
    seq = [ids.setdefault(_eqn_signature(e), len(ids)) for e in ir.eqns]
    # Polynomial prefix hashes: equal runs of signatures compare in O(1).
    mod, base = (1 << 61) - 1, 1_000_003
    prefix, power = [0] * (n + 1), [1] * (n + 1)
    for i, x in enumerate(seq):
        prefix[i + 1] = (prefix[i] * base + x + 1) % mod
        power[i + 1] = power[i] * base % mod

    def run_hash(a: int, b: int) -> int:
        return (prefix[b] - prefix[a] * power[b - a]) % mod

    following: list = [None] * n  # next position with the same signature
    last: dict = {}
    for i in reversed(range(n)):
        following[i] = last.get(seq[i])
        last[seq[i]] = i
    block, i = 0, 0
    while i < n:
        best = (0, 0)  # (period, repeats)
        j = following[i]
        for _ in range(_CANDIDATE_PERIODS):
            if j is None:
                break
            p = j - i
            if i + 2 * p > n:
                break
            h, r = run_hash(i, j), 1
            while i + (r + 1) * p <= n and run_hash(i + r * p, i + (r + 1) * p) == h:
                r += 1
            if r >= MIN_BLOCK_REPEATS and p * r > best[0] * best[1]:
                best = (p, r)
            j = following[j]
        p, r = best
        if not r:
            i += 1
            continue
        for k in range(r):
            blocks[i + k * p:i + (k + 1) * p] = [block] * p
            block += 1
        i += p * r
    return blocks


def is_contiguous_view(e: Eqn) -> bool:
    """A reshape, or a slice that takes a contiguous block of a C-order array (unit steps;
    length 1 on the axes before some axis, everything of the axes after it)."""
    if e.prim not in (st.reshape_p, st.slice_p) or not e.inputs[0].aval.shape \
            or not e.outs[0].aval.shape:
        return False
    if e.prim is st.reshape_p:
        return True
    if e.prim is not st.slice_p:
        return False
    p, shape = e.params, e.inputs[0].aval.shape
    if any(s != 1 for s in p["strides"]):
        return False
    lengths = [hi - lo for lo, hi in zip(p["start"], p["limit"])]
    d = next((i for i, n in enumerate(lengths) if n != 1), len(shape) - 1)
    return all(p["start"][i] == 0 and p["limit"][i] == shape[i]
               for i in range(d + 1, len(shape)))


def make_plan(ir: IR, split: bool = True) -> Plan:
    """Group the equations of an optimized IR into loop kernels (and, if `split`, the
    kernels of a big program into separately compiled runs)."""
    plan = _Planner(ir).run()
    plan.segments = choose_segments(plan) if split else [(0, len(plan.kernels))]
    return plan


# -- segments: big programs as several compiled functions ------------------------------------
#
# Numba compiles one function in time that grows faster than its size (type inference and
# LLVM over one huge body), and at about 0.1 s per loop nest on a 2-core machine. A program of
# many kernels is therefore split into runs of kernels, each compiled as its own function and
# called in turn by a plain Python driver. Programs unrolled by a Python loop repeat the same
# run of kernels (one step forward, one step backward): each repetition becomes one run, the
# runs print the same code, and one compiled function serves all of them. The driver costs
# about a microsecond per run it calls, so small programs stay one function.

SPLIT_ABOVE_KERNELS = 24  # programs with more kernels than this are split
MAX_RUN_KERNELS = 16  # longest run of distinct kernels in one function
MAX_PERIOD = 24  # longest repeated run of kernels looked for


def choose_segments(plan: Plan) -> list[tuple[int, int]]:
    """[(start, stop)] kernel ranges, each compiled as one function. Views take no part in
    finding repetitions (`xs[t]` differs in each step; the driver takes such views)."""
    n = len(plan.kernels)
    real = [k for k, kern in enumerate(plan.kernels)
            if not (isinstance(kern, CallKernel) and kern.comp.kind == "view")]
    if len(real) <= SPLIT_ABOVE_KERNELS:
        return [(0, n)]
    producer = {v: e for e in plan.ir.eqns for v in e.outs}
    given = set(plan.ir.invars) | set(plan.ir.constvars)
    order = {id(e): i for i, e in enumerate(plan.ir.eqns)}
    ids: dict = {}
    seq = [ids.setdefault(_kernel_signature(plan, plan.kernels[k], producer, given, order),
                          len(ids)) for k in real]
    cuts: list[int] = []  # positions in `real` where a new function starts
    plain_start = 0

    def flush(stop: int) -> None:
        cuts.extend(range(plain_start, stop, MAX_RUN_KERNELS))

    i, m = 0, len(seq)
    while i < m:
        period, repeats = _repetition(seq, i)
        if repeats < 2 or period * repeats < 4:
            i += 1
            continue
        flush(i)
        unit = period * max(1, 4 // period)  # a run of at least ~4 kernels per call
        reps = period * repeats // unit
        cuts.extend(i + r * unit for r in range(reps))
        i += reps * unit
        plain_start = i
    flush(m)
    starts = [0] + [real[c] for c in cuts if c > 0]
    return [(a, b) for a, b in zip(starts, starts[1:] + [n]) if b > a]


def _repetition(seq: list, i: int) -> tuple[int, int]:
    """(period, repeats) of the run starting at `i` that repeats back to back and covers
    the most kernels (the shortest such period on ties)."""
    best = (1, 1)
    n = len(seq)
    for p in range(1, min(MAX_PERIOD, (n - i) // 2) + 1):
        unit = seq[i:i + p]
        r = 1
        while i + (r + 1) * p <= n and seq[i + r * p:i + (r + 1) * p] == unit:
            r += 1
        if r >= 2 and p * r > best[0] * best[1]:
            best = (p, r)
    return best


def _kernel_signature(plan: Plan, kernel, producer: dict, given: set, order: dict) -> tuple:
    """What a kernel computes, without which variables it reads: kernels with equal
    signatures are candidates for one compiled function."""
    if isinstance(kernel, CallKernel):
        return ("call", _eqn_signature(kernel.comp.eqn))
    stages = []
    for stage in kernel.stages:
        items = []
        for comp in stage.items:
            cone = _cone(comp, producer, plan.materialized, given, order)
            items.append((comp.kind, comp.mode, _eqn_signature(comp.eqn),
                          tuple(_eqn_signature(e) for e in cone)))
        stages.append((stage.inner, tuple(items)))
    return ("loop", kernel.outer, tuple(stages), tuple(sorted(kernel.row_cache.values())))


def _eqn_signature(e: Eqn) -> tuple:
    params = tuple(sorted((k, _param_signature(v)) for k, v in e.params.items()))
    ins = tuple(("lit", a.aval.dtype, a.value.item()) if isinstance(a, Literal) else
                _aval_signature(a.aval) for a in e.inputs)
    return (e.prim, params, ins, tuple(_aval_signature(v.aval) for v in e.outs))


def _aval_signature(aval) -> tuple:
    return (aval.shape, aval.dtype) if isinstance(aval, ShapedArray) else ("tape", aval)


def _param_signature(value):
    if isinstance(value, IR):
        return str(value)
    if isinstance(value, (tuple, list)):
        return tuple(_param_signature(v) for v in value)
    try:
        hash(value)
        return value
    except TypeError:
        return repr(value)


# -- printing --------------------------------------------------------------------------------

def _shape(s) -> str:
    return "(" + ", ".join(map(str, s)) + ")"


def format_plan(plan: Plan) -> str:
    names = plan.names

    def name(a):
        return names.get(a, "?") if isinstance(a, Var) else repr(a)

    def eqn_text(e):
        return f"{name(e.outs[0])} = {e.prim.name} " + " ".join(name(a) for a in e.inputs)

    ir = plan.ir
    lines = [f"plan {ir.name}(" + ", ".join(f"{name(v)}: {v.aval}" for v in ir.invars)
             + ") -> " + ", ".join(name(a) for a in ir.outs)]
    producer = {v: e for e in ir.eqns for v in e.outs}
    order = {id(e): i for i, e in enumerate(ir.eqns)}
    planner = _Planner(ir)
    planner.materialized = plan.materialized
    for k, kernel in enumerate(plan.kernels):
        if isinstance(kernel, CallKernel):
            c = kernel.comp
            what = "view" if c.kind == "view" else "call"
            lines.append(f"  kernel {k}: {what} {c.eqn.prim.name} -> {name(c.var)} "
                         f"{c.var.aval}   [{eqn_text(c.eqn)}]")
            continue
        head = f"loop over {_shape(kernel.outer)}" if kernel.outer else "no outer loop"
        lines.append(f"  kernel {k}: {head}")
        if kernel.row_cache:
            lines.append("    keeps per row (scratch): " + ", ".join(
                f"{name(v)} (from stage {s})" for v, s in kernel.row_cache.items()))
        for s, stage in enumerate(kernel.stages):
            inner = f"inner loop over {_shape(stage.inner)}" if stage.inner else "body"
            lines.append(f"    stage {s}: {inner}")
            reads: set = set()
            inlined: list = []
            cached_before = {v for v, first in kernel.row_cache.items() if first < s}
            for comp in stage.items:
                idx = _loop_vars(kernel.outer, stage.inner)
                for v, _ in planner.reads(comp, idx):
                    reads.add(v)
                inlined += _cone(comp, producer, (plan.materialized | cached_before)
                                 if cached_before else plan.materialized,
                                 planner.given, order)
            for comp in stage.items:
                verb = {"write": "writes", "row": "reduces per row",
                        "accumulate": "accumulates"}[comp.mode]
                keep = "" if comp.var in plan.stored else " (kept in a local)"
                lines.append(f"      {verb} {name(comp.var)}: {comp.var.aval}{keep}   "
                             f"[{eqn_text(comp.eqn)}]")
            if reads:
                lines.append("      reads " + ", ".join(sorted(name(v) for v in reads)))
            seen_eqns = []
            for e in inlined:
                if e not in seen_eqns:
                    seen_eqns.append(e)
            if seen_eqns:
                lines.append("      recomputes " + "; ".join(eqn_text(e) for e in seen_eqns))
    outs = ", ".join(name(a) for a in ir.outs)
    lines.append(f"  outputs {outs}")
    if len(plan.segments) > 1:
        runs = ", ".join(f"{a}-{b - 1}" if b - a > 1 else str(a) for a, b in plan.segments)
        lines.append(f"  compiled as {len(plan.segments)} functions (kernels {runs})")
    return "\n".join(lines)


def _cone(comp, producer, materialized, given, order: dict | None = None) -> list:
    """Inlined equations a computation recomputes, in IR order (`order`: id(eqn) ->
    position, computed from `producer` when not given)."""
    found = []
    stack = list(comp.eqn.inputs)
    seen = set()
    while stack:
        a = stack.pop()
        if not isinstance(a, Var) or a in seen or a in given or a in materialized:
            continue
        seen.add(a)
        e = producer[a]
        found.append(e)
        stack.extend(e.inputs)
    if order is None:
        order = {id(e): i for i, e in enumerate(producer.values())}
    return sorted(found, key=lambda e: order.get(id(e), 0))
