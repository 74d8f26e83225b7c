"""Golden listings of gradient IRs, and structural checks that gradient IRs stay minimal:
no multiplication by 1, no addition of 0, no foldable constants, no broadcasts that could be
implicit scalars, no duplicated and no dead equations.

A pinned listing changing is not necessarily a bug, but a listing growing is a regression:
update the pin only after reading the new listing."""

import textwrap

import numpy as np
import pytest

import tracejit as tj
import tracejit.nn as nn
import tracejit.numpy as tnp
from tracejit.core import eval_ir, trace_flat
from tracejit.ir import Literal, ShapedArray, Var
from tracejit.optimize import optimize
from tracejit.primitives import elementwise as ew
from tracejit.primitives import indexing as ix
from tracejit.primitives import structural as st


def listing(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def grad_listing(f, *args, **kwargs) -> str:
    ir = tj.check_ir(tj.make_ir(tj.grad(f, **kwargs))(*args))
    return str(ir)


# -- the functions -----------------------------------------------------------------------------

def sum_sin_times_x(x):
    return tnp.sum(tnp.sin(x) * x)


def sum_x_times_x(x):
    return tnp.sum(x * x)


def mean_exp(x):
    return tnp.mean(tnp.exp(x))


def w1(x):
    return tnp.sum(tnp.tanh(x) * tnp.sin(x) + tnp.exp(-0.5 * x * x))


def logreg(w, b, X, y):
    return tnp.mean(tnp.logaddexp(0.0, -y * (X @ w + b)))


def rosenbrock(x):
    return tnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


X8 = np.linspace(-1.0, 1.5, 8)


# -- golden listings -------------------------------------------------------------------------

GOLDEN_SUM_SIN_TIMES_X = listing("""
    ir sum_sin_times_x(a: f64[8]) -> f64[8]
      b: f64[8] = sin a
      c: f64[8] = cos a
      d: f64[8] = mul a c
      e: f64[8] = add b d
      return e
""")


def test_golden_sum_sin_times_x():
    text = grad_listing(sum_sin_times_x, X8)
    assert text == GOLDEN_SUM_SIN_TIMES_X
    # exactly the equations a hand derivation needs: sin x + x cos x
    ir = tj.make_ir(tj.grad(sum_sin_times_x))(X8)
    assert sorted(e.prim.name for e in ir.eqns) == ["add", "cos", "mul", "sin"]
    assert "reduce_sum" not in text and "broadcast_in_dim" not in text
    assert "1.0" not in text and "0.0" not in text
    np.testing.assert_allclose(tj.grad(sum_sin_times_x)(X8), np.sin(X8) + X8 * np.cos(X8),
                               rtol=1e-15)


def test_golden_sum_sin_times_x_float32_has_the_same_shape():
    x = X8.astype(np.float32)
    assert grad_listing(sum_sin_times_x, x) == GOLDEN_SUM_SIN_TIMES_X.replace("f64", "f32")


GOLDEN_VALUE_AND_GRAD_SUM_SIN_TIMES_X = listing("""
    ir sum_sin_times_x(a: f64[8]) -> (f64[], f64[8])
      b: f64[8] = sin a
      c: f64[8] = cos a
      d: f64[8] = mul b a
      e: f64[]  = reduce_sum[axes=(0,)] d
      f: f64[8] = mul a c
      g: f64[8] = add b f
      return e, g
""")


def test_golden_value_and_grad_sum_sin_times_x_shares_sin():
    ir = tj.check_ir(tj.make_ir(tj.value_and_grad(sum_sin_times_x))(X8))
    assert str(ir) == GOLDEN_VALUE_AND_GRAD_SUM_SIN_TIMES_X
    v, g = tj.value_and_grad(sum_sin_times_x)(X8)
    assert v == pytest.approx(np.sum(np.sin(X8) * X8), rel=1e-15)
    np.testing.assert_allclose(g, np.sin(X8) + X8 * np.cos(X8), rtol=1e-15)


GOLDEN_SUM_X_TIMES_X = listing("""
    ir sum_x_times_x(a: f64[8]) -> f64[8]
      b: f64[8] = mul 2.0 a
      return b
""")


def test_golden_sum_x_times_x():
    assert grad_listing(sum_x_times_x, X8) == GOLDEN_SUM_X_TIMES_X
    np.testing.assert_array_equal(tj.grad(sum_x_times_x)(X8), 2.0 * X8)


GOLDEN_MEAN_EXP = listing("""
    ir mean_exp(a: f64[8]) -> f64[8]
      b: f64[8] = exp a
      c: f64[8] = mul 0.125 b
      return c
""")


def test_golden_mean_exp():
    assert grad_listing(mean_exp, X8) == GOLDEN_MEAN_EXP
    np.testing.assert_allclose(tj.grad(mean_exp)(X8), np.exp(X8) / 8.0, rtol=1e-15)


GOLDEN_W1 = listing("""
    ir w1(a: f64[8]) -> f64[8]
      b: f64[8] = tanh a
      c: f64[8] = mul b b
      d: f64[8] = sub 1.0 c
      e: f64[8] = sin a
      f: f64[8] = cos a
      g: f64[8] = mul -0.5 a
      h: f64[8] = mul g a
      i: f64[8] = exp h
      j: f64[8] = mul g i
      k: f64[8] = mul i a
      l: f64[8] = mul -0.5 k
      m: f64[8] = add j l
      n: f64[8] = mul b f
      o: f64[8] = add m n
      p: f64[8] = mul e d
      q: f64[8] = add o p
      return q
""")


def test_golden_w1():
    assert grad_listing(w1, X8) == GOLDEN_W1
    t = np.tanh(X8)
    expected = (1 - t * t) * np.sin(X8) + t * np.cos(X8) - X8 * np.exp(-0.5 * X8 * X8)
    np.testing.assert_allclose(tj.grad(w1)(X8), expected, rtol=1e-14)


GOLDEN_LOGREG = listing("""ir logreg(a: f64[3], b: f64[], c: f64[4,3], d: f64[4]) -> (f64[3], f64[])
  e: f64[4]  = neg d
  f: f64[4]  = dot_general[dimension_numbers=(((1,), (0,)), ((), ()))] c a
  g: f64[4]  = add f b
  h: f64[4]  = mul e g
  i: bool[4] = ne h h
  j: f64[4]  = logistic h
  k: f64[4]  = select i 0.5 j
  l: f64[4]  = mul 0.25 k
  m: f64[4]  = mul e l
  n: f64[]   = reduce_sum[axes=(0,)] m
  o: f64[3]  = dot_general[dimension_numbers=(((0,), (0,)), ((), ()))] m c
  return o, n
""")


def logreg_args():
    rng = np.random.default_rng(0)
    return (rng.standard_normal(3), np.float64(0.2), rng.standard_normal((4, 3)),
            np.array([1.0, -1.0, -1.0, 1.0]))


def test_golden_logreg():
    args = logreg_args()
    assert grad_listing(logreg, *args, argnums=(0, 1)) == GOLDEN_LOGREG
    w, b, X, y = args
    z = -y * (X @ w + b)
    dm = -y * (0.5 * (1 + np.tanh(0.5 * z))) / 4
    gw, gb = tj.grad(logreg, argnums=(0, 1))(*args)
    np.testing.assert_allclose(gw, X.T @ dm, rtol=1e-13)
    assert gb == pytest.approx(dm.sum(), rel=1e-13)


GOLDEN_ROSENBROCK = listing("""
    ir rosenbrock(a: f64[5]) -> f64[5]
      b: f64[4] = slice[start=(1,), limit=(5,), strides=(1,)] a
      c: f64[4] = slice[start=(0,), limit=(4,), strides=(1,)] a
      d: f64[4] = integer_pow[y=2] c
      e: f64[4] = mul c 2.0
      f: f64[4] = sub b d
      g: f64[4] = mul f 2.0
      h: f64[4] = sub 1.0 c
      i: f64[4] = mul h 2.0
      j: f64[4] = neg i
      k: f64[4] = mul 100.0 g
      l: f64[4] = neg k
      m: f64[4] = mul l e
      n: f64[4] = add j m
      o: f64[5] = pad[low=(0,), high=(1,), interior=(0,)] n 0.0
      p: f64[5] = pad[low=(1,), high=(0,), interior=(0,)] k 0.0
      q: f64[5] = add o p
      return q
""")


def test_golden_rosenbrock_scales_by_a_scalar_not_a_broadcast_array():
    x = np.array([0.5, -1.0, 2.0, 0.1, 1.5])
    assert grad_listing(rosenbrock, x) == GOLDEN_ROSENBROCK
    a, b = x[:-1], x[1:]
    r = b - a * a
    expected = np.zeros(5)
    expected[:-1] = -400 * a * r - 2 * (1 - a)
    expected[1:] += 200 * r
    np.testing.assert_allclose(tj.grad(rosenbrock)(x), expected, rtol=1e-14)


# -- structural checks over many gradient IRs --------------------------------------------------

def _filled(a, producers):
    """The literal value `a` is filled with (a literal or a broadcast of one), else None."""
    if isinstance(a, Literal):
        return a.value
    p = producers.get(a) if isinstance(a, Var) else None
    if p is not None and p.prim is st.broadcast_in_dim_p and isinstance(p.inputs[0], Literal):
        return p.inputs[0].value
    return None


def _key(eqn):
    ins = tuple(("lit", str(a.aval.dtype), a.value.item()) if isinstance(a, Literal) else id(a)
                for a in eqn.inputs)
    return eqn.prim, ins, repr(sorted(eqn.params.items(), key=lambda kv: kv[0]))


def waste(ir, allow_zero_arrays=False) -> list[str]:
    """Everything in `ir` a minimal gradient IR would not contain."""
    problems = []
    used = {a for a in ir.outs if isinstance(a, Var)}
    for e in ir.eqns:
        used.update(a for a in e.inputs if isinstance(a, Var))
    producers, seen = {}, set()
    elementwise = set(ew.elementwise_table)
    for i, e in enumerate(ir.eqns):
        where = f"equation {i} ({e.prim.name})"
        fills = [_filled(a, producers) for a in e.inputs]
        if e.prim is ew.mul_p and any(f is not None and f == 1 for f in fills):
            problems.append(f"{where} multiplies by 1")
        if e.prim is ew.add_p and any(f is not None and f == 0 for f in fills):
            problems.append(f"{where} adds 0")
        if e.prim in (ew.sub_p, ew.div_p) and fills[1] is not None and fills[1] == (
                0 if e.prim is ew.sub_p else 1):
            problems.append(f"{where} is an identity")
        if not any(v in used for v in e.outs):
            problems.append(f"{where} is dead")
        key = _key(e)
        if key in seen:
            problems.append(f"{where} duplicates an earlier equation")
        seen.add(key)
        out_shape = e.outs[0].aval.shape
        foldable = elementwise | {st.reshape_p, st.transpose_p, st.convert_p}
        if (e.prim in foldable and out_shape != () and e.inputs
                and all(f is not None for f in fills)):
            problems.append(f"{where} has only constant operands (foldable)")
        if e.prim in elementwise | {st.select_p}:
            for a, f in zip(e.inputs, fills):
                if f is not None and not isinstance(a, Literal) and any(
                        b is not a and b.aval.shape == out_shape for b in e.inputs):
                    problems.append(f"{where} reads a broadcast literal, not a scalar")
        if e.prim is st.reshape_p and isinstance(e.inputs[0], Var) and getattr(
                producers.get(e.inputs[0]), "prim", None) is st.reshape_p:
            problems.append(f"{where} reshapes a reshape")
        if (not allow_zero_arrays and e.prim is st.broadcast_in_dim_p
                and fills[0] is not None and fills[0] == 0):
            problems.append(f"{where} materializes a zero array")
        for v in e.outs:
            producers[v] = e
    return problems


def test_waste_detector_detects_waste():
    """The checker used below is not vacuous: it flags hand-made wasteful IRs."""
    def wasteful(x):
        ones = st.broadcast_in_dim(np.float64(1.0), (4,), ())
        zeros = st.broadcast_in_dim(np.float64(0.0), (4,), ())
        a = ew.mul(x, ones)
        b = ew.add(a, zeros)
        ew.sin(x)  # dead
        c = ew.mul(ew.mul(100.0, ones), b)
        d = st.reshape(st.reshape(c, (2, 2)), (4,))
        return [ew.add(ew.cos(x), ew.cos(x)), d]

    ir, _ = trace_flat(wasteful, [ShapedArray((4,), np.float64)], stage_all=True)
    tj.check_ir(ir)
    found = " | ".join(waste(ir))
    for what in ("multiplies by 1", "adds 0", "is dead", "duplicates", "foldable",
                 "reshapes a reshape", "zero array"):
        assert what in found, (what, found)
    # ... and the simplifier removes all of it, without changing the values.
    opt = tj.check_ir(optimize(ir))
    assert waste(opt) == [], str(opt)
    x = np.array([0.1, -2.0, 3.0, 0.5])
    for a, b in zip(eval_ir(ir, [x]), eval_ir(opt, [x])):
        np.testing.assert_array_equal(a, b)
    assert sorted(e.prim.name for e in opt.eqns) == ["add", "cos", "mul"], str(opt)


def test_simplifier_writes_scatter_into_the_other_addend():
    """add (scatter_add zeros i u) y -> scatter_add y i u: the zeros are never built."""
    def fn(y, u):
        idx = np.array([[0], [2], [2]])
        zeros = st.broadcast_in_dim(np.float64(0.0), (4,), ())
        return [ew.add(y, ix.scatter_add(zeros, idx, u))]

    ir, _ = trace_flat(fn, [ShapedArray((4,), np.float64), ShapedArray((3,), np.float64)],
                       stage_all=True)
    tj.check_ir(ir)
    opt = tj.check_ir(optimize(ir))
    assert [e.prim.name for e in opt.eqns] == ["scatter_add"], str(opt)
    y, u = np.array([1.0, 2.0, 3.0, 4.0]), np.array([10.0, 20.0, 30.0])
    np.testing.assert_array_equal(eval_ir(opt, [y, u])[0], [11.0, 2.0, 53.0, 4.0])
    np.testing.assert_array_equal(y, [1.0, 2.0, 3.0, 4.0])  # the operand is not mutated


def _xent(logits, labels):
    return tnp.mean(nn.logsumexp(logits, 1) - logits[tnp.arange(logits.shape[0]), labels])


def _mlp(p, x, labels):
    h = tnp.tanh(x @ p["W1"] + p["b1"])
    logp = nn.log_softmax(h @ p["W2"] + p["b2"], axis=1)
    return -tnp.mean(logp[tnp.arange(x.shape[0]), labels])


def _cases():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(6)
    M = rng.standard_normal((4, 5))
    labels = np.array([0, 2, 4, 2])
    w, b, X, y = logreg_args()
    p32 = {"W1": rng.standard_normal((5, 4)).astype(np.float32),
           "b1": rng.standard_normal(4).astype(np.float32),
           "W2": rng.standard_normal((4, 3)).astype(np.float32),
           "b2": rng.standard_normal(3).astype(np.float32)}
    return {
        "sum_sin_times_x": (sum_sin_times_x, (x,), {}),
        "sum_x_times_x": (sum_x_times_x, (x,), {}),
        "mean_exp": (mean_exp, (x,), {}),
        "w1": (w1, (x,), {}),
        "w1_np": (lambda x: np.sum(np.tanh(x) * np.sin(x) + np.exp(-0.5 * x * x)), (x,), {}),
        "logreg": (logreg, (w, b, X, y), {"argnums": (0, 1)}),
        "logreg_np": (lambda w, b, X, y: np.mean(np.logaddexp(0, -y * (X @ w + b))),
                      (w, b, X, y), {"argnums": (0, 1)}),
        "rosenbrock": (rosenbrock, (x,), {}),
        "xent": (_xent, (M, labels), {}),
        "mlp": (_mlp, (p32, M[:2].astype(np.float32), labels[:2] % 3), {}),
        "logsumexp": (lambda x: nn.logsumexp(x), (M,), {}),
        "logsumexp_axis": (lambda x: tnp.sum(nn.logsumexp(x, 0) ** 2), (M,), {}),
        "softmax": (lambda x: tnp.sum(nn.softmax(x) * tnp.arange(5.0)), (M,), {}),
        "log_softmax": (lambda x: tnp.sum(nn.log_softmax(x, 0) ** 2), (M,), {}),
        "sigmoid": (lambda x: tnp.sum(nn.sigmoid(x)), (M,), {}),
        "relu": (lambda x: tnp.sum(nn.relu(x) ** 2), (M,), {}),
        "softplus": (lambda x: tnp.mean(nn.softplus(x)), (M,), {}),
    }


CASES = _cases()
# The mlp's cross-entropy sums the one-hot cotangent over each row (reduce_sum of a
# scatter into zeros), so its gradient IR keeps one zero array.
ZERO_ARRAYS_ALLOWED = {"mlp"}


@pytest.mark.parametrize("transform", [tj.grad, tj.value_and_grad],
                         ids=["grad", "value_and_grad"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_irs_have_no_waste(name, transform):
    f, args, kwargs = CASES[name]
    ir = tj.check_ir(tj.make_ir(transform(f, **kwargs))(*args))
    assert waste(ir, allow_zero_arrays=name in ZERO_ARRAYS_ALLOWED) == [], str(ir)
    # the literal forms, spelled out as the brief asks
    for e in ir.eqns:
        lits = [a.value for a in e.inputs if isinstance(a, Literal)]
        if e.prim is ew.mul_p:
            assert 1.0 not in lits, str(ir)
        if e.prim is ew.add_p:
            assert 0.0 not in lits, str(ir)


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_gradient_equation_is_used(name):
    f, args, kwargs = CASES[name]
    ir = tj.check_ir(tj.make_ir(tj.grad(f, **kwargs))(*args))
    assert ir.eqns
    uses = {a for e in ir.eqns for a in e.inputs if isinstance(a, Var)}
    uses |= {a for a in ir.outs if isinstance(a, Var)}
    for e in ir.eqns:
        assert any(v in uses for v in e.outs), f"dead {e.prim.name} in\n{ir}"


def test_cse_merges_commuted_operands():
    """`x * y` and `y * x` are one product; their cotangents meet before the last multiply."""
    def f(x, y):
        return tnp.sum(tnp.sin(x * y) + tnp.cos(y * x))

    x, y = np.array([0.3, -1.0, 2.0]), np.array([1.5, 0.25, -0.7])
    ir = tj.check_ir(tj.make_ir(tj.grad(f))(x, y))
    assert waste(ir) == [], str(ir)
    assert sorted(e.prim.name for e in ir.eqns) == ["add", "cos", "mul", "mul", "neg", "sin"]
    np.testing.assert_allclose(tj.grad(f)(x, y), (np.cos(x * y) - np.sin(x * y)) * y,
                               rtol=1e-15)
