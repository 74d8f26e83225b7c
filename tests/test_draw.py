"""Pictures of loop plans: `Plan.to_svg` (SVG written by tracejit itself), `Plan.to_dot`,
the forward/backward colouring, the summary of big plans, the dump beside the other stages,
and the log line for slow compiles."""

import importlib
import logging
import os
import re
import time
import xml.etree.ElementTree as ET

import numpy as np

import tracejit as tj
import tracejit.nn as nn
import tracejit.numpy as tnp
from tracejit.compiler import draw

jit_mod = importlib.import_module("tracejit.jit")  # the module, not the function
SVG = "{http://www.w3.org/2000/svg}"
RNG = np.random.default_rng(20261205)
LOGITS = RNG.standard_normal((64, 10))
LABELS = RNG.integers(0, 10, 64)


def xent(logits, labels):
    n = logits.shape[0]
    return tnp.mean(nn.logsumexp(logits, axis=1) - logits[tnp.arange(n), labels])


def unrolled_loss(steps):
    def loss(p, x):
        for _ in range(steps):
            x = x + 0.01 * tnp.tanh(p[0] * x + p[1]) - 0.001 * x ** 3
        return tnp.sum(x ** 2)
    return loss


def _texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    assert root.tag == SVG + "svg"
    return ["".join(t.itertext()) for t in root.iter(SVG + "text")]


def _fills(svg: str) -> set:
    root = ET.fromstring(svg)
    return {el.get("fill") for el in root.iter() if el.get("fill")}


def test_w8_gradient_svg_names_every_kernel_and_output(tmp_path):
    low = tj.jit(tj.value_and_grad(xent)).lower(LOGITS, LABELS)
    path = tmp_path / "w8.svg"
    svg = low.plan.to_svg(str(path))
    assert path.read_text(encoding="utf-8") == svg
    texts = _texts(svg)
    titles = [t for t in texts if t.startswith("kernel ")]
    assert [int(re.match(r"kernel (\d+)", t).group(1)) for t in titles] == \
        list(range(len(low.plan.kernels)))
    for i, a in enumerate(low.ir.outs):
        assert any(t.startswith(f"output {i}: {low.plan.names[a]}") for t in texts)
    for v in low.ir.invars:
        assert any(t.startswith(f"input {low.plan.names[v]}:") for t in texts)
    fills = _fills(svg)
    assert draw.COLORS[draw.FORWARD] in fills and draw.COLORS[draw.BACKWARD] in fills


def test_w8_directions_split_at_the_cotangent():
    ir = tj.jit(tj.grad(xent)).lower(LOGITS, LABELS).ir
    d = draw.directions(ir)
    by_prim = {}
    for e in ir.eqns:
        by_prim.setdefault(e.prim.name, set()).add(d[id(e)])
    # the forward pass: max, exp, log-sum, the label index
    for prim in ("reduce_max", "exp", "reduce_sum", "iota", "concatenate"):
        assert by_prim[prim] == {draw.FORWARD}, prim
    # the gradient: softmax times the seed, scattered at the labels
    assert by_prim["scatter_add"] == {draw.BACKWARD}
    assert by_prim["mul"] == {draw.BACKWARD}
    last = ir.eqns[-1]
    assert d[id(last)] == draw.BACKWARD and last.outs[0] is ir.outs[0]


def test_value_and_grad_keeps_the_loss_forward():
    ir = tj.jit(tj.value_and_grad(xent)).lower(LOGITS, LABELS).ir
    d = draw.directions(ir)
    producer = {v: e for e in ir.eqns for v in e.outs}
    assert d[id(producer[ir.outs[0]])] == draw.FORWARD
    assert d[id(producer[ir.outs[1]])] == draw.BACKWARD


def test_forward_only_program_has_no_backward():
    ir = tj.jit(lambda x: tnp.sum(tnp.sin(x) * x)).lower(np.ones(5)).ir
    assert set(draw.directions(ir).values()) == {draw.FORWARD}


def test_recomputed_values_are_marked():
    low = tj.jit(tj.grad(lambda x: tnp.sum(tnp.tanh(x) ** 2))).lower(np.ones(100))
    texts = _texts(low.plan.to_svg())
    assert any(t.startswith("↻ recomputes") for t in texts)
    assert any(t.startswith("■ ") for t in texts)  # the gradient array is stored


def test_dot_text():
    low = tj.jit(tj.value_and_grad(xent)).lower(LOGITS, LABELS)
    dot = low.plan.to_dot()
    assert dot.startswith('digraph "plan_') and dot.rstrip().endswith("}")
    for k in range(len(low.plan.kernels)):
        assert f'"k{k}" [' in dot
    for i in range(len(low.ir.outs)):
        assert f'"out_{i}"' in dot
    assert dot.count("{") == dot.count("}")
    assert draw.COLORS[draw.BACKWARD] in dot


def test_big_plan_is_summarized_and_linear():
    p, x = np.array([0.7, 0.1]), RNG.standard_normal(16)

    def draw_once(steps):
        low = tj.jit(tj.grad(unrolled_loss(steps))).lower(p, x)
        t0 = time.perf_counter()
        svg = low.plan.to_svg()
        return low, svg, time.perf_counter() - t0

    draw_once(5)
    low1, svg1, t1 = draw_once(50)
    low4, svg4, t4 = draw_once(200)
    assert len(low4.plan.kernels) > draw.DETAIL_LIMIT
    texts = _texts(svg4)
    assert any("equal run" in t for t in texts), texts[:20]
    # every kernel is accounted for: the boxes' ranges cover 0..n-1
    spans = [tuple(map(int, m.groups())) for t in texts
             for m in [re.match(r"kernels (\d+)-(\d+)", t)] if m]
    singles = [(int(m.group(1)),) * 2 for t in texts
               for m in [re.match(r"kernel (\d+)( |$)", t)] if m]
    covered = sorted(spans + singles)
    assert covered[0][0] == 0 and covered[-1][1] == len(low4.plan.kernels) - 1
    assert all(b[0] == a[1] + 1 for a, b in zip(covered, covered[1:]))
    assert any(t.startswith("output 0:") for t in texts)
    assert len(svg4) < 4 * len(svg1) + 20000  # summary: no line per kernel
    # the repeated forward steps are all forward, the repeated backward steps all backward
    steps = [t for t in texts if "equal runs" in t]
    assert len(steps) == 2, steps
    counts = [int(m.group(1)) for t in texts for m in [re.match(r"(\d+) (forward|backward) "
                                                               r"equations", t)] if m]
    runs = [i for i, t in enumerate(texts) if "equal runs" in t]
    fwd_step = [t for t in texts[runs[0]:runs[1]] if "equations" in t]
    bwd_step = [t for t in texts[runs[1]:] if "equations" in t][:2]
    assert fwd_step[1].startswith("0 backward") and not fwd_step[0].startswith("0 ")
    assert bwd_step[0].startswith("0 forward") and not bwd_step[1].startswith("0 ")
    assert sum(counts) >= len(low4.ir.eqns)  # recomputed values count in every kernel
    assert t4 < 8 * t1 + 0.5, (t1, t4)  # 4x the equations; quadratic would be 16x


def test_dump_dir_writes_the_svg(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEJIT_DUMP_DIR", str(tmp_path))
    f = tj.jit(lambda x: tnp.sum(tnp.cos(x) * 3.0))
    f(np.arange(7.0))
    svgs = [n for n in os.listdir(tmp_path) if n.endswith(".plan.svg")]
    assert len(svgs) == 1
    ET.parse(tmp_path / svgs[0])
    assert os.path.exists(tmp_path / svgs[0].replace(".plan.svg", ".plan.txt"))


def test_slow_compile_is_logged_once(caplog, monkeypatch):
    monkeypatch.setattr(jit_mod, "SLOW_COMPILE_SECONDS", 0.0)

    def slowish(x):
        return tnp.sum(tnp.exp(x) * 2.5)

    f = tj.jit(slowish)
    with caplog.at_level(logging.INFO, logger="tracejit"):
        f(np.ones(9))
        f(np.ones(9))
    lines = [r.getMessage() for r in caplog.records if r.name == "tracejit"]
    assert len(lines) == 1, lines
    assert "slowish" in lines[0] and "equations" in lines[0] and "kernels" in lines[0]
    assert re.search(r"took \d+\.\d s", lines[0])


def test_fast_compile_is_not_logged(caplog, monkeypatch):
    monkeypatch.setattr(jit_mod, "SLOW_COMPILE_SECONDS", 1e9)
    f = tj.jit(lambda x: tnp.sum(tnp.exp(x) * 3.5))
    with caplog.at_level(logging.INFO, logger="tracejit"):
        f(np.ones(9))
    assert not [r for r in caplog.records if r.name == "tracejit"]
