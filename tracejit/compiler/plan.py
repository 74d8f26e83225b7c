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

from ..ir import IR, Eqn, Literal, Var, var_names
from ..primitives import control as cf
from ..primitives import elementwise as ew
from ..primitives import indexing as ix
from ..primitives import linalg as la
from ..primitives import reductions as rd
from ..primitives import structural as st
from .index import INLINABLE, input_reads

# Worth computing once per row and keeping in a scratch row rather than recomputing.
EXPENSIVE = {ew.exp_p, ew.expm1_p, ew.exp2_p, ew.log_p, ew.log1p_p, ew.log2_p, ew.log10_p,
             ew.sin_p, ew.cos_p, ew.tan_p, ew.asin_p, ew.acos_p, ew.atan_p, ew.sinh_p,
             ew.cosh_p, ew.tanh_p, ew.asinh_p, ew.acosh_p, ew.atanh_p, ew.logistic_p,
             ew.pow_p, ew.atan2_p, ew.hypot_p, ew.cbrt_p, ew.logaddexp_p}
REDUCE_PRIMS = {rd.reduce_sum_p, rd.reduce_max_p, rd.reduce_min_p, rd.reduce_prod_p}
MAX_INLINE_DEPTH = 64  # longest chain of inlined equations recomputed inside one loop body
# Control flow: real loops and branches whose bodies are planned and generated recursively.
CONTROL_PRIMS = {cf.cond_p, cf.scan_p, cf.while_p, cf.checkpoint_p, cf.call_p,
                 cf.while_record_p, cf.replay_p}
CALL_PRIMS = CONTROL_PRIMS | {la.dot_general_p, ix.scatter_add_p, rd.cumsum_p, rd.cumprod_p,
                              rd.cumlinrec_p, rd.argmax_p, rd.argmin_p}


@dataclass(eq=False)
class Computation:
    kind: str  # "write" | "reduce" | "call"
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

    def __str__(self) -> str:
        return format_plan(self)

    __repr__ = __str__


def _loop_vars(outer, inner):
    return [f"i{k}" for k in range(len(outer))] + [f"j{k}" for k in range(len(inner))]


class _Planner:
    def __init__(self, ir: IR):
        self.ir = ir
        self.producer: dict[Var, Eqn] = {v: e for e in ir.eqns for v in e.outs}
        self.given: set[Var] = set(ir.invars) | set(ir.constvars)
        self.materialized: set[Var] = set()
        self.kernels: list = []
        # var -> (kernel index, stage index, computation)
        self.where: dict[Var, tuple] = {}

    # -- materialization --------------------------------------------------------------
    def choose_materialized(self) -> None:
        needs = set()
        for a in self.ir.outs:
            if isinstance(a, Var) and a in self.producer:
                needs.add(a)
        for e in self.ir.eqns:
            if e.prim in REDUCE_PRIMS or e.prim in CALL_PRIMS:
                needs.update(e.outs)
            if e.prim is la.dot_general_p or e.prim in CONTROL_PRIMS:
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
        if comp.kind == "call":  # call kernels read their operands anywhere
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
        if comp.kind == "call":
            self.kernels.append(CallKernel(comp))
            for v in comp.eqn.outs:
                self.where[v] = (len(self.kernels) - 1, 0, comp)
            return
        reads = self.reads_for_placement(comp)
        produced_by = {self.where[v][0] for v, _ in reads if v in self.where}
        best = None
        for k in reversed(range(len(self.kernels))):
            kernel = self.kernels[k]
            if isinstance(kernel, LoopKernel):
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
            self.kernels.append(LoopKernel(self.fresh_outer(comp)))
            k = len(self.kernels) - 1
            mode, inner = self.fits(self.kernels[k], comp)[0]
            how = self.check(k, comp, inner)
            assert how is not None, "a computation must fit a kernel made for it"
            best = (0, k, mode, inner, how)
        _, k, mode, inner, how = best
        self.add(k, comp, mode, inner, how)

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
            if eqn.prim in REDUCE_PRIMS:
                comp = Computation("reduce", eqn, eqn.inputs[0].aval.shape)
            elif eqn.prim in CALL_PRIMS:
                comp = Computation("call", eqn, v.aval.shape, "call")
            else:
                comp = Computation("write", eqn, v.aval.shape, "write")
            self.place(comp)
        self.choose_row_caches()
        return Plan(self.ir, self.kernels, set(self.materialized), self.stored_values(),
                    var_names(self.ir))

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
                if comp.kind == "call":
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


def make_plan(ir: IR) -> Plan:
    """Group the equations of an optimized IR into loop kernels."""
    return _Planner(ir).run()


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
    for k, kernel in enumerate(plan.kernels):
        if isinstance(kernel, CallKernel):
            c = kernel.comp
            lines.append(f"  kernel {k}: call {c.eqn.prim.name} -> {name(c.var)} "
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
            planner = _Planner(ir)
            planner.materialized = plan.materialized
            reads: set = set()
            inlined: list = []
            cached_before = {v for v, first in kernel.row_cache.items() if first < s}
            for comp in stage.items:
                idx = _loop_vars(kernel.outer, stage.inner)
                for v, _ in planner.reads(comp, idx):
                    reads.add(v)
                inlined += _cone(comp, producer, plan.materialized | cached_before,
                                 planner.given)
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
    return "\n".join(lines)


def _cone(comp, producer, materialized, given) -> list:
    """Inlined equations a computation recomputes, in IR order."""
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
    order = {id(e): i for i, e in enumerate(producer.values())}
    return sorted(found, key=lambda e: order.get(id(e), 0))
