"""Pictures of a loop plan: SVG written here as plain text, and Graphviz DOT text.

`to_svg(plan)` draws the program top to bottom in plan order: its inputs, one box per
kernel (loop kernels with their stages, call kernels, views), the runs of kernels that a
big program is compiled as (`plan.segments`, dashed frames), and its outputs. Inside a box
each line is one equation: what the kernel stores (■ an array or scalar kept beyond its
loop, □ a value kept in a local), reduces (◆) and recomputes (↻, in italics: inlined values,
never stored). Arrows on the right carry the arrays one kernel writes to the kernels and
outputs that read them. Plans of more than `DETAIL_LIMIT` kernels are summarized: one box
per compiled run (equal consecutive runs drawn once, with their count).

Forward and backward. The optimizer folds the output cotangent (the seed 1.0) into
literals, so a gradient program no longer says which values carry it; `directions` infers
it from the structure reverse mode leaves:
1. A value is *forward* if it is a program input or constant, the result or an operand of
   a non-linear primitive (`tanh`, `exp`, comparisons, ...), the denominator of a `div`,
   an index or a predicate, an ancestor of such a value, or, when the program returns a
   0-d value first and gradients after it (`value_and_grad`), an ancestor of that value.
2. Starting from each output that has the type of a program input (a gradient), walk
   back through linear primitives (`add`, `neg`, `broadcast_in_dim`, `reduce_sum`,
   `select`'s branches, `scatter_add`, ...) and through the one operand of a product
   (`mul`, `dot_general`, `div`'s numerator) that is not forward (when neither is, the one
   behind the longer chain of non-forward equations: the other is a derivative coefficient
   such as `1 - t*t`): every equation reached is *backward* (it is linear in the
   cotangent). The walk stops at a product of two forward values or at a control-flow
   equation: that is where the folded cotangent enters.
3. Everything else is forward.
Derivative coefficients such as `cos x` therefore count as forward when they are computed
from forward values only, and the loss's own tail (`mean`) counts as forward only when the
program returns the loss. The rule guesses only for programs that are not gradients: in
`jit(f)` of `2 * x`, the output has the type of `x` and its `mul` is drawn backward.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from ..ir import IR, Eqn, Literal, Var

DETAIL_LIMIT = 80  # kernels drawn one by one; above this, one box per compiled run
MAX_LINES = 18  # lines shown in one kernel box
MAX_CHARS = 86  # characters of one line
MAX_LANES = 36  # arrows drawn side by side to the right of the kernels

FORWARD, BACKWARD = "forward", "backward"
COLORS = {FORWARD: "#1f5fbf", BACKWARD: "#c8501e"}
FILLS = {FORWARD: "#eef4fc", BACKWARD: "#fdf0e6", "mixed": "#ffffff"}

# Linear in every (float) operand.
_LINEAR = {"add", "sub", "neg", "reduce_sum", "broadcast_in_dim", "reshape", "transpose",
           "convert", "concatenate", "pad", "slice", "rev", "cumsum", "copy", "squeeze",
           "expand_dims", "fft"}
_BILINEAR = {"mul", "dot_general"}
# Linear in some operands only: the operand positions.
_PARTLY_LINEAR = {"div": (0,), "select": (1, 2), "gather": (0,), "scatter_add": (0, 2)}
_CONTROL = {"scan", "cond", "while_loop", "while_record", "replay", "checkpoint", "call"}


# -- forward / backward -------------------------------------------------------------------------

def directions(ir: IR) -> dict[int, str]:
    """id(eqn) -> "forward" | "backward" for the top-level equations (module docstring)."""
    producer = {v: e for e in ir.eqns for v in e.outs}
    forward: set = set(ir.invars) | set(ir.constvars)

    def is_float(v) -> bool:
        return getattr(v.aval, "dtype", None) is not None and v.aval.dtype.kind == "f"

    for e in ir.eqns:
        name = e.prim.name
        var_ins = [a for a in e.inputs if isinstance(a, Var)]
        if name in _LINEAR or name in _BILINEAR or name in _CONTROL:
            continue
        if name in _PARTLY_LINEAR:
            linear = _PARTLY_LINEAR[name]
            forward.update(a for i, a in enumerate(e.inputs)
                           if isinstance(a, Var) and i not in linear)
            continue
        forward.update(var_ins)  # a non-linear primitive: operands and result are forward
        forward.update(e.outs)
    for v in _int_values(ir):
        forward.add(v)
    outs = [a for a in ir.outs if isinstance(a, Var)]
    first = ir.outs[0] if ir.outs else None
    value_first = (len(ir.outs) > 1 and isinstance(first, Var) and first.aval.shape == ()
                   and is_float(first))
    if value_first:
        forward.add(first)
    _close_ancestors(forward, producer)

    # longest chain of non-forward equations behind each value
    depth: dict = {}
    for e in ir.eqns:
        d = 1 + max((depth.get(a, 0) for a in e.inputs if isinstance(a, Var)), default=0)
        for v in e.outs:
            depth[v] = 0 if v in forward else d
    in_types = {(v.aval.shape, v.aval.dtype) for v in ir.invars}
    backward: set = set()
    stack = [v for v in outs[1 if value_first else 0:]
             if (v.aval.shape, getattr(v.aval, "dtype", None)) in in_types]
    seen: set = set()
    while stack:
        v = stack.pop()
        if v in seen or v in forward or v not in producer:
            continue
        seen.add(v)
        e = producer[v]
        backward.add(id(e))
        name = e.prim.name
        if name in _LINEAR:
            operands = list(range(len(e.inputs)))
        elif name in _BILINEAR:
            operands = [i for i, a in enumerate(e.inputs[:2])
                        if isinstance(a, Var) and a not in forward]
            if len(operands) == 2:  # the cotangent is the longer chain, the other a coefficient
                d0, d1 = (depth.get(e.inputs[i], 0) for i in operands)
                operands = operands if d0 == d1 else [operands[0] if d0 > d1 else operands[1]]
        elif name in _PARTLY_LINEAR:
            operands = list(_PARTLY_LINEAR[name])
        else:  # control flow or anything else: the cotangent enters here
            operands = []
        stack.extend(e.inputs[i] for i in operands if i < len(e.inputs)
                     and isinstance(e.inputs[i], Var) and is_float(e.inputs[i]))
    return {id(e): BACKWARD if id(e) in backward else FORWARD for e in ir.eqns}


def _int_values(ir: IR) -> list:
    """Integer and boolean values: never cotangents."""
    return [v for e in ir.eqns for v in e.outs
            if getattr(v.aval, "dtype", None) is not None and v.aval.dtype.kind in "biu"]


def _close_ancestors(values: set, producer: dict) -> None:
    stack = list(values)
    while stack:
        v = stack.pop()
        e = producer.get(v)
        if e is None:
            continue
        for a in e.inputs:
            if isinstance(a, Var) and a not in values:
                values.add(a)
                stack.append(a)


# -- what the picture shows: kernels, lines, edges ----------------------------------------------

class _Line:
    """One line of a box: `text` in the colour of `direction`, or, for recomputed values,
    `parts` [(name, direction)] each in its own colour."""
    __slots__ = ("text", "direction", "role", "parts")

    def __init__(self, text: str, direction: str | None, role: str, parts=None):
        self.text, self.direction, self.role, self.parts = text, direction, role, parts


class _Box:
    """One kernel (or, summarized, one run of kernels)."""

    def __init__(self, key: str, title: str, kind: str):
        self.key, self.title, self.kind = key, title, kind
        self.lines: list[_Line] = []
        self.counts = {FORWARD: 0, BACKWARD: 0}
        self.writes: list = []  # Vars it materializes
        self.reads: list = []  # Vars (materialized or given) it reads

    @property
    def tone(self) -> str:
        f, b = self.counts[FORWARD], self.counts[BACKWARD]
        return "mixed" if f and b else (BACKWARD if b else FORWARD)


class _Model:
    def __init__(self, plan):
        self.plan = plan
        ir = plan.ir
        self.names = plan.names
        self.direction = directions(ir)
        self.producer = {v: e for e in ir.eqns for v in e.outs}
        self.given = set(ir.invars) | set(ir.constvars)
        self.order = {id(e): i for i, e in enumerate(ir.eqns)}
        self.boxes = [self._kernel_box(k, kern) for k, kern in enumerate(plan.kernels)]
        self.where: dict = {}
        for k, box in enumerate(self.boxes):
            for v in box.writes:
                self.where.setdefault(v, k)

    def name(self, a) -> str:
        if isinstance(a, Var):
            return self.names.get(a, "?")
        if isinstance(a, Literal):
            return repr(a)
        return str(a)

    def eqn_text(self, e: Eqn) -> str:
        outs = ", ".join(self.name(v) for v in e.outs)
        return f"{outs} = {e.prim.name} " + " ".join(self.name(a) for a in e.inputs)

    def _cone(self, e: Eqn, stop: set) -> list:
        """Inlined equations `e` recomputes (not materialized, not given), in IR order."""
        found, seen, stack = [], set(), list(e.inputs)
        while stack:
            a = stack.pop()
            if not isinstance(a, Var) or a in seen or a in self.given or a in stop:
                continue
            seen.add(a)
            p = self.producer.get(a)
            if p is not None:
                found.append(p)
                stack.extend(p.inputs)
        return found

    def _read_vars(self, eqns: list, stop: set) -> list:
        out = []
        for e in eqns:
            for a in e.inputs:
                if isinstance(a, Var) and (a in self.given or a in stop) and a not in out:
                    out.append(a)
        return out

    def _kernel_box(self, k: int, kern) -> _Box:
        from .plan import CallKernel
        mat = self.plan.materialized
        if isinstance(kern, CallKernel):
            c = kern.comp
            kind = "view" if c.kind == "view" else "call"
            outs = ", ".join(f"{self.name(v)} {v.aval}" for v in c.eqn.outs)
            box = _Box(f"k{k}", f"kernel {k} · {kind} {c.eqn.prim.name} → {outs}", kind)
            self._add(box, c.eqn, "stored")
            box.writes = list(c.eqn.outs)
            box.reads = self._read_vars([c.eqn], mat)
            self._add_inputs_read(box)
            return box
        head = f"loop over ({', '.join(map(str, kern.outer))})" if kern.outer else "no loop"
        box = _Box(f"k{k}", f"kernel {k} · {head}", "loop")
        order = self.order
        for s, stage in enumerate(kern.stages):
            inner = f"inner loop over ({', '.join(map(str, stage.inner))})" if stage.inner \
                else "body"
            box.lines.append(_Line(f"stage {s}: {inner}", None, "stage"))
            recomputed: list = []
            cached = {v for v, first in kern.row_cache.items() if first < s}
            for comp in stage.items:
                for e in self._cone(comp.eqn, mat | cached if cached else mat):
                    if e not in recomputed:
                        recomputed.append(e)
            recomputed.sort(key=lambda e: order.get(id(e), 0))
            for comp in stage.items:
                stored = comp.var in self.plan.stored
                role = ("reduce" if comp.kind == "reduce" else "stored") if stored else "local"
                self._add(box, comp.eqn, role)
                box.writes.append(comp.var)
            self._add_recomputed(box, recomputed)
            for v in self._read_vars([c.eqn for c in stage.items] + recomputed, mat):
                if v not in box.reads:
                    box.reads.append(v)
        if kern.row_cache:
            box.lines.insert(0, _Line("keeps per row (scratch): " + ", ".join(
                self.name(v) for v in kern.row_cache), None, "stage"))
        self._add_inputs_read(box)
        return box

    def _add_inputs_read(self, box: _Box) -> None:
        names = [self.name(v) for v in box.reads if v in self.given]
        if names:
            box.lines.append(_Line("reads " + ", ".join(names), None, "input"))

    def _add(self, box: _Box, e: Eqn, role: str) -> None:
        d = self.direction.get(id(e), FORWARD)
        box.counts[d] += 1
        mark = {"stored": "■", "reduce": "◆", "local": "□", "inlined": "↻"}[role]
        avals = ", ".join(str(v.aval) for v in e.outs)
        box.lines.append(_Line(f"{mark} {self.eqn_text(e)}   : {avals}", d, role))

    def _add_recomputed(self, box: _Box, eqns: list) -> None:
        """Recomputed values as names only, wrapped: `↻ recomputes d e f ...`."""
        head = "↻ recomputes"
        chunks: list[list] = [[]]
        width = len(head)
        for e in eqns:
            d = self.direction.get(id(e), FORWARD)
            box.counts[d] += 1
            for v in e.outs:
                name = self.name(v)
                if width + len(name) + 1 > MAX_CHARS - 4 and chunks[-1]:
                    chunks.append([])
                    width = len(head)
                chunks[-1].append((name, d))
                width += len(name) + 1
        for i, chunk in enumerate(c for c in chunks if c):
            box.lines.append(_Line(head if i == 0 else " " * len(head), None, "inlined",
                                   chunk))

    def edges(self) -> list[tuple]:
        """(producer kernel, consumer kernel or "out", var) for materialized values."""
        out = []
        for k, box in enumerate(self.boxes):
            for v in box.reads:
                src = self.where.get(v)
                if src is not None and src != k:
                    out.append((src, k, v))
        for a in self.plan.ir.outs:
            if isinstance(a, Var) and a in self.where:
                out.append((self.where[a], "out", a))
        return out


def _summary_boxes(model: _Model) -> list[_Box]:
    """One box per compiled run (or per 20 kernels for a program of one run); equal
    consecutive runs merge into one box that says how many."""
    plan = model.plan
    runs = plan.segments if len(plan.segments) > 1 else \
        [(a, min(a + 20, len(plan.kernels))) for a in range(0, len(plan.kernels), 20)]

    def signature(a, b):
        return tuple((box.kind, tuple(ln.text.split(" = ")[1].split(" ")[0]
                                      for ln in box.lines if ln.direction))
                     for box in model.boxes[a:b])

    groups: list = []
    for a, b in runs:
        sig = signature(a, b)
        if groups and groups[-1][0] == sig:
            groups[-1][1].append((a, b))
        else:
            groups.append((sig, [(a, b)]))
    boxes = []
    for _sig, members in groups:
        a, b = members[0][0], members[-1][1]
        kernels = model.boxes[a:b]
        what = "run" if len(plan.segments) > 1 else "kernels"
        title = f"kernels {a}-{b - 1}" if b - a > 1 else f"kernel {a}"
        if len(members) > 1:
            title += f" · {len(members)} equal {what}s of {members[0][1] - members[0][0]}"
        box = _Box(f"r{a}", title, "run")
        kinds = {kind: sum(k.kind == kind for k in kernels) for kind in ("loop", "call", "view")}
        for kb in kernels:
            for d in (FORWARD, BACKWARD):
                box.counts[d] += kb.counts[d]
            box.writes += kb.writes
            box.reads += kb.reads
        box.lines.append(_Line(", ".join(f"{n} {kind}{'s' * (n != 1)}"
                                         for kind, n in kinds.items() if n),
                               None, "stage"))
        box.lines.append(_Line(f"{box.counts[FORWARD]} forward equations", FORWARD, "stored"))
        box.lines.append(_Line(f"{box.counts[BACKWARD]} backward equations", BACKWARD,
                               "stored"))
        prims: dict = {}
        for kb in kernels:
            for ln in kb.lines:
                if ln.direction:
                    p = ln.text.split(" = ")[1].split(" ")[0]
                    prims[p] = prims.get(p, 0) + 1
        top = sorted(prims.items(), key=lambda kv: -kv[1])[:8]
        box.lines.append(_Line("most used: " + ", ".join(f"{p} ×{n}" for p, n in top),
                               None, "stage"))
        box.span = (a, b)  # type: ignore[attr-defined]
        boxes.append(box)
    return boxes


# -- SVG ---------------------------------------------------------------------------------------

_CHAR_W = 6.6  # width of one character of the 11 px monospace font
_LINE_H = 14
_BOX_W = int(MAX_CHARS * _CHAR_W) + 20
_LEFT = 30
_GAP = 16
_LEGEND_W = 1060
_OUT_ROW = 12  # vertical distance of the arrows into the outputs
_LABEL_W = 44  # room for a value's name between a box and the arrows' lanes


def _clip(text: str, n: int = MAX_CHARS) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


def to_svg(plan, path: str | None = None) -> str:
    """The plan as an SVG document (text); also written to `path` if given."""
    model = _Model(plan)
    summarized = len(plan.kernels) > DETAIL_LIMIT
    boxes = _summary_boxes(model) if summarized else model.boxes
    ir = plan.ir
    body: list[str] = []
    y = 20
    title = (f"plan {ir.name}: {len(ir.eqns)} equations, {len(plan.kernels)} kernels, "
             f"{len(plan.segments)} compiled function{'s' * (len(plan.segments) != 1)}")
    body.append(_text(_LEFT, y + 4, title, size=14, weight="bold"))
    y += 14
    y = _legend(body, _LEFT, y + 10)

    # inputs
    y += 10
    body.append(_text(_LEFT, y + 10, "inputs", weight="bold"))
    y += 16
    given = list(ir.invars) + list(ir.constvars)
    y = _chips(body, [(("input " if v in ir.invars else "constant ") +
                       f"{model.name(v)}: {v.aval}") for v in given], y, "#e9f5e9", "#3b7d3b")

    # kernels
    y += 12
    tops, bottoms = [], []
    seg_of = {}
    if not summarized:
        for s, (a, b) in enumerate(plan.segments):
            for k in range(a, b):
                seg_of[k] = s
    framed = not summarized and len(plan.segments) > 1
    for i, box in enumerate(boxes):
        if framed and (i == 0 or seg_of[i] != seg_of[i - 1]):
            y += 20  # room for the run's label
        tops.append(y)
        y = _box(body, box, _LEFT, y)
        bottoms.append(y)
        y += _GAP
    if framed:
        for s, (a, b) in enumerate(plan.segments):
            x0, x1 = _LEFT - 12, _LEFT + _BOX_W + 12
            y0, y1 = tops[a] - 18, bottoms[b - 1] + 6
            body.insert(0, f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" '
                           'rx="8" fill="#f7f7f7" stroke="#888" stroke-dasharray="6 4"/>')
            label = f"compiled function {s} · kernels {a}-{b - 1}" if b - a > 1 else \
                f"compiled function {s} · kernel {a}"
            body.append(_text(x0 + 8, y0 + 13, label, size=11, color="#555"))

    # outputs
    y += 4
    out_top = y
    body.append(_text(_LEFT, y + 10, "outputs", weight="bold"))
    n_arrows = sum(1 for a in ir.outs if isinstance(a, Var) and a in model.where)
    y += 16 + (0 if summarized else _OUT_ROW * max(n_arrows - 1, 0))
    y = _chips(body, [f"output {i}: {model.name(a)}" + (f": {a.aval}" if isinstance(a, Var)
                                                          else "")
                      for i, a in enumerate(ir.outs)], y, "#f2ecf9", "#6a3d9a")

    # arrows: array handed from one kernel to a later kernel (or to the outputs)
    width = _LEFT + _BOX_W + 40
    if not summarized:
        width = _arrows(body, model.edges(), tops, bottoms, out_top, model)
    else:
        for i in range(len(boxes) - 1):
            x = _LEFT + _BOX_W // 2
            body.append(_arrow_path(f"M{x},{bottoms[i]} L{x},{tops[i + 1]}", "#999"))
    width = max(width, _LEGEND_W)
    height = y + 20
    svg = "\n".join([
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans Mono, Menlo, Consolas, '
        'monospace" font-size="11">',
        f"<title>{escape(title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="context-stroke"/></marker></defs>',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        *body, "</svg>", ""])
    if path is not None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(svg)
    return svg


def _text(x, y, text, size=11, weight="normal", color="#222", style="normal") -> str:
    attrs = f'x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{color}"'
    if weight != "normal":
        attrs += f' font-weight="{weight}"'
    if style != "normal":
        attrs += f' font-style="{style}"'
    return f"<text {attrs}>{escape(text)}</text>"


def _legend(body: list, x: float, y: float) -> float:
    items = [("forward", COLORS[FORWARD], "normal"),
             ("backward", COLORS[BACKWARD], "normal"),
             ("↻ recomputed, never stored", "#666", "italic"),
             ("■ stored □ local ◆ reduced", "#222", "normal")]
    cx = x
    for text, color, style in items:
        body.append(f'<rect x="{cx}" y="{y}" width="10" height="10" fill="{color}"/>')
        body.append(_text(cx + 14, y + 9, text, color=color, style=style))
        cx += 14 + len(text) * _CHAR_W + 18
    body.append(f'<rect x="{cx}" y="{y - 1}" width="26" height="12" fill="white" '
                'stroke="#555" stroke-dasharray="3 2"/>')
    body.append(_text(cx + 32, y + 9, "view (no copy)"))
    cx += 32 + 15 * _CHAR_W
    body.append(f'<rect x="{cx}" y="{y - 1}" width="26" height="12" fill="white" '
                'stroke="#555" stroke-width="2"/>')
    body.append(_text(cx + 32, y + 9, "call (BLAS, scatter, loop, ...)"))
    return y + 14


def _chips(body: list, labels: list[str], y: float, fill: str, stroke: str) -> float:
    x = _LEFT
    for label in labels:
        label = _clip(label, 60)
        w = len(label) * _CHAR_W + 14
        if x + w > _LEFT + _BOX_W and x > _LEFT:
            x, y = _LEFT, y + 24
        body.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="18" rx="9" '
                    f'fill="{fill}" stroke="{stroke}"/>')
        body.append(_text(x + 7, y + 13, label, color=stroke))
        x += w + 8
    return y + 24


def _box(body: list, box: _Box, x: float, y: float) -> float:
    lines = box.lines
    hidden = []
    if len(lines) > MAX_LINES:
        hidden, lines = lines[MAX_LINES - 1:], lines[:MAX_LINES - 1]
    h = 26 + _LINE_H * (len(lines) + bool(hidden)) + 6
    stroke = {"view": ' stroke-dasharray="5 3"', "call": ' stroke-width="2"'}.get(box.kind, "")
    body.append(f'<g><title>{escape(box.title)}</title>')
    body.append(f'<rect x="{x}" y="{y}" width="{_BOX_W}" height="{h}" rx="4" '
                f'fill="{FILLS[box.tone]}" stroke="#444"{stroke}/>')
    # left band: the share of forward (top) and backward (bottom) equations
    total = box.counts[FORWARD] + box.counts[BACKWARD]
    if total:
        fh = h * box.counts[FORWARD] / total
        body.append(f'<rect x="{x}" y="{y}" width="6" height="{fh:.1f}" '
                    f'fill="{COLORS[FORWARD]}"/>')
        body.append(f'<rect x="{x}" y="{y + fh:.1f}" width="6" height="{h - fh:.1f}" '
                    f'fill="{COLORS[BACKWARD]}"/>')
    body.append(_text(x + 14, y + 17, _clip(box.title), size=12, weight="bold"))
    ty = y + 26
    for ln in lines:
        ty += _LINE_H
        indent = 14 if ln.role in ("stage", "input") else 26
        color = COLORS.get(ln.direction, "#3b7d3b" if ln.role == "input" else "#555")
        if ln.parts is not None:
            spans = "".join(f' <tspan fill="{COLORS[d]}">{escape(n)}</tspan>'
                            for n, d in ln.parts)
            body.append(f'<text x="{x + indent}" y="{ty - 3}" fill="#666" '
                        f'font-style="italic" xml:space="preserve">{escape(ln.text)}{spans}'
                        '</text>')
            continue
        body.append(_text(x + indent, ty - 3, _clip(ln.text, MAX_CHARS - 2), color=color,
                          weight="bold" if ln.role in ("stored", "reduce") else "normal"))
    if hidden:
        ty += _LINE_H
        body.append(_text(x + 26, ty - 3, f"… {len(hidden)} more lines (all: "
                          f"{box.counts[FORWARD]} forward, {box.counts[BACKWARD]} backward "
                          "equations)", color="#555", style="italic"))
    body.append("</g>")
    return y + h


def _arrow_path(d: str, color: str) -> str:
    return (f'<path d="{d}" fill="none" stroke="{color}" stroke-width="1.2" '
            'marker-end="url(#arrow)"/>')


def _arrows(body: list, edges: list, tops: list, bottoms: list, out_top: float,
            model: _Model) -> int:
    """One lane per value: it leaves its producer's right side, runs down, and enters each
    reader; lanes are reused where values do not overlap vertically."""
    right = _LEFT + _BOX_W
    taps: dict = {}
    n_out = 0
    entering: dict = {}
    for src, dst, v in edges:
        if dst == "out":  # one row per output, so that their names do not overlap
            y1 = out_top + 8 + _OUT_ROW * n_out
            n_out += 1
        else:  # the values entering one kernel one below the other, as far as it is tall
            j = entering[dst] = entering.get(dst, -1) + 1
            rows = max(int((bottoms[dst] - tops[dst] - 16) // 10), 1)
            y1 = tops[dst] + 12 + 10 * (j % rows)
        taps.setdefault((src, v), []).append(y1)
    leaving: dict = {}  # values leaving one kernel start a few pixels apart
    spans = []
    for (src, v), ys in taps.items():
        m = leaving[src] = leaving.get(src, -1) + 1
        spans.append((bottoms[src] - 6 - 4 * (m % 5), sorted(ys), v))
    spans.sort(key=lambda s: (s[0], s[1][-1]))
    lane_end: list[float] = []
    dropped = 0
    for y0, ys, v in spans:
        lane = next((i for i, end in enumerate(lane_end) if end < y0 - 4), None)
        if lane is None:
            if len(lane_end) >= MAX_LANES:
                dropped += 1
                continue
            lane = len(lane_end)
            lane_end.append(0.0)
        lane_end[lane] = ys[-1]
        lx = right + _LABEL_W + lane * 11
        color = COLORS[model.direction.get(id(model.producer.get(v)), FORWARD)]
        body.append(f'<path d="M{right},{y0:.1f} L{lx},{y0:.1f} L{lx},{ys[-1]:.1f}" '
                    f'fill="none" stroke="{color}" stroke-width="1.2"/>')
        for y1 in ys:
            body.append(_arrow_path(f"M{lx},{y1:.1f} L{right + 2},{y1:.1f}", color))
            body.append(_text(right + 4, y1 - 3, _clip(model.name(v), 7), size=9,
                              color=color))
    width = right + _LABEL_W + max(len(lane_end), 1) * 11 + 40
    if dropped:
        body.append(_text(right + 10, 14, f"{dropped} values' arrows not drawn", size=9,
                          color="#555"))
    return int(width)


# -- DOT ---------------------------------------------------------------------------------------

def _dot_escape(text: str) -> str:
    return escape(text, {'"': "&quot;"})


def to_dot(plan) -> str:
    """The plan as Graphviz DOT text (`dot -Tsvg`), with the same boxes, colours and runs."""
    model = _Model(plan)
    summarized = len(plan.kernels) > DETAIL_LIMIT
    boxes = _summary_boxes(model) if summarized else model.boxes
    ir = plan.ir
    out = [f'digraph "plan_{ir.name}" {{',
           '  graph [rankdir=TB, fontname="monospace", fontsize=11, '
           f'label="plan {_dot_escape(ir.name)}: {len(ir.eqns)} equations, '
           f'{len(plan.kernels)} kernels", labelloc=t];',
           '  node [shape=box, fontname="monospace", fontsize=10];',
           '  edge [fontname="monospace", fontsize=9];']
    for v in list(ir.invars) + list(ir.constvars):
        out.append(f'  "in_{model.name(v)}" [shape=ellipse, color="#3b7d3b", '
                   f'label="{_dot_escape(model.name(v))}: {v.aval}"];')

    def node(box: _Box) -> str:
        rows = [f'<tr><td align="left"><b>{_dot_escape(box.title)}</b></td></tr>']
        lines = box.lines[:MAX_LINES]
        for ln in lines:
            text = _dot_escape(_clip(ln.text))
            if ln.parts is not None:
                text = _dot_escape(ln.text.strip() or "...") + "".join(
                    f' <font color="{COLORS[d]}">{_dot_escape(n)}</font>' for n, d in ln.parts)
                text = f"<i>{text}</i>"
            color = COLORS.get(ln.direction, "#555555")
            rows.append(f'<tr><td align="left"><font color="{color}">{text}</font></td></tr>')
        if len(box.lines) > MAX_LINES:
            rows.append(f'<tr><td align="left"><i>… {len(box.lines) - MAX_LINES} more lines'
                        '</i></td></tr>')
        style = {"view": "dashed,filled", "call": "bold,filled"}.get(box.kind, "filled")
        return (f'  "{box.key}" [style="{style}", fillcolor="{FILLS[box.tone]}", label=<'
                f'<table border="0" cellspacing="0">{"".join(rows)}</table>>];')

    if not summarized and len(plan.segments) > 1:
        for s, (a, b) in enumerate(plan.segments):
            out.append(f'  subgraph "cluster_{s}" {{')
            out.append(f'    label="compiled function {s}"; style=dashed; color="#888888";')
            out += ["  " + node(boxes[k]) for k in range(a, b)]
            out.append("  }")
    else:
        out += [node(b) for b in boxes]
    for i, a in enumerate(ir.outs):
        out.append(f'  "out_{i}" [shape=ellipse, color="#6a3d9a", '
                   f'label="output {i}: {_dot_escape(model.name(a))}"];')
    if summarized:
        for b0, b1 in zip(boxes, boxes[1:]):
            out.append(f'  "{b0.key}" -> "{b1.key}";')
        index = {k: box.key for box in boxes for k in range(*box.span)}  # type: ignore
    else:
        index = {k: box.key for k, box in enumerate(boxes)}
    for k, box in enumerate(model.boxes):
        for v in box.reads:
            if v in model.given:
                out.append(f'  "in_{model.name(v)}" -> "{index[k]}";')
    for src, dst, v in model.edges():
        if dst == "out":
            continue
        if index[src] != index[dst]:
            d = model.direction.get(id(model.producer.get(v)), FORWARD)
            out.append(f'  "{index[src]}" -> "{index[dst]}" [label="{model.name(v)}", '
                       f'color="{COLORS[d]}"];')
    for i, a in enumerate(ir.outs):
        if isinstance(a, Var) and a in model.where:
            out.append(f'  "{index[model.where[a]]}" -> "out_{i}";')
        elif isinstance(a, Var) and a in model.given:
            out.append(f'  "in_{model.name(a)}" -> "out_{i}";')
    out.append("}")
    return "\n".join(dict.fromkeys(out)) + "\n"  # duplicate edges drawn once


def kernel_reads(plan) -> list[list]:
    """For each kernel of `plan`, the arguments and materialized values it reads from
    memory (what counts as a pass over an input)."""
    return [box.reads for box in _Model(plan).boxes]
