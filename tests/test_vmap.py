"""vmap: batching rules against a Python loop over the batch, composition with grad, jvp,
jit and itself, errors, and a batching rule (or a justified exemption) for every primitive."""

import numpy as np
import pytest

import tracejit as tj
import tracejit.numpy as tnp
from tracejit.core import Primitive
from tracejit.primitives import indexing as ix
from tracejit.primitives import reductions as rd
from tracejit.primitives import structural as st
from tracejit.testing import check_grads
from tracejit.transforms.batching import EXEMPT, batching_rules

rng = np.random.default_rng(0)


def loop(f, in_axes, args, out_axis=0):
    """The reference: f applied to each example, stacked (leafwise on dict outputs)."""
    size = next(np.shape(a)[ax] for a, ax in zip(args, in_axes) if ax is not None)
    outs = []
    for i in range(size):
        ex = [a if ax is None else np.take(a, i, axis=ax) for a, ax in zip(args, in_axes)]
        outs.append(f(*ex))
    if isinstance(outs[0], dict):
        return {k: np.stack([np.asarray(o[k]) for o in outs], out_axis) for k in outs[0]}
    return np.stack([np.asarray(o) for o in outs], out_axis)


def close(a, b, atol=1e-12):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-10, atol=atol, err_msg=k)
    else:
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=atol)


def many(x, y):
    """Every primitive family on one per-example x (4, 3) and y (3,)."""
    idx = np.array([2, 0, 3, 1])
    return {
        "elementwise": tnp.sin(x) * y + tnp.exp(-x) / (1.0 + y ** 2) - tnp.logaddexp(x, y),
        "integer_pow": x ** 3,
        "compare_select": tnp.where(x > y, x, y * 2.0),
        "convert": (x > 0.3).astype(np.float64) + tnp.floor(x * 4).astype(np.int32),
        "stop_gradient": tj.stop_gradient(x) * x,
        "sum": tnp.sum(x, axis=0) + tnp.max(x, axis=1).sum() + tnp.prod(y),
        "min": tnp.min(x, axis=0),
        "argmax": tnp.argmax(x, axis=1) + tnp.argmin(y),
        "cumsum": tnp.cumsum(x, axis=1) + tnp.cumprod(x, axis=0),
        "broadcast": x + y[None, :],
        "reshape": tnp.reshape(x, (2, 6)),
        "transpose": x.T @ x,
        "slice": x[1:3, ::2] + x[:1:-1, 1:],
        "pad": tnp.pad(x, ((1, 0), (0, 2))),
        "concat": tnp.concatenate([x, y[None, :]], axis=0),
        "gather": x[idx] + x[:, 1][idx][:, None],
        "scatter": ix.scatter_add(tnp.zeros((5, 3)), np.array([[0], [4], [0], [2]]), x),
        "dot": x @ y + tnp.dot(y, y),
        "bigdot": tnp.outer(x[0], y) @ tnp.ones((3, 100)),
        "iota": tnp.arange(4.0) * y[0],
    }


def test_every_family_against_a_loop():
    x, y = rng.standard_normal((5, 4, 3)), rng.standard_normal((5, 3))
    close(tj.vmap(many)(x, y), loop(many, (0, 0), (x, y)))
    # y unbatched, x batched along its last axis, outputs on axis 1 (negative: -1 of 3-d?).
    xt = np.moveaxis(x, 0, -1)
    got = tj.vmap(many, in_axes=(-1, None))(xt, y[0])
    close(got, loop(many, (2, None), (xt, y[0])))
    got = tj.vmap(many, in_axes=(None, 0))(x[0], y)
    close(got, loop(many, (None, 0), (x[0], y)))


def test_jit_of_vmap_and_out_axes():
    x, y = rng.standard_normal((5, 4, 3)), rng.standard_normal((5, 3))
    f = tj.jit(tj.vmap(many, in_axes=(0, 0), out_axes=1))
    got = f(x, y)
    close(got, loop(many, (0, 0), (x, y), out_axis=1))


def test_pad_with_a_batched_value_and_dot_orders():
    x, v = rng.standard_normal((4, 3)), rng.standard_normal(4)
    f = lambda x, v: st.pad(x, v, (1,), (2,), (1,))  # noqa: E731
    close(tj.vmap(f)(x, v), loop(f, (0, 0), (x, v)))
    a, b = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 5, 20))
    close(tj.vmap(tnp.matmul)(a, b), loop(tnp.matmul, (0, 0), (a, b)))
    close(tj.vmap(tnp.matmul, (None, 0))(a[0], b), loop(tnp.matmul, (None, 0), (a[0], b)))
    close(tj.vmap(tnp.matmul, (0, None))(a, b[0]), loop(tnp.matmul, (0, None), (a, b[0])))
    small = rng.standard_normal((3, 5, 2))
    close(tj.vmap(tnp.matmul, (None, 0))(a[0], small),
          loop(tnp.matmul, (None, 0), (a[0], small)))


def test_gather_and_scatter_with_batched_indices():
    x = rng.standard_normal((6, 5))
    idx = rng.integers(0, 6, (4, 3, 1))
    f = lambda x, i: ix.gather(x, i)  # noqa: E731
    close(tj.vmap(f, (None, 0))(x, idx), loop(f, (None, 0), (x, idx)))
    xs = rng.standard_normal((4, 6, 5))
    close(tj.vmap(f, (0, 0))(xs, idx), loop(f, (0, 0), (xs, idx)))
    u = rng.standard_normal((4, 3, 5))
    g = lambda x, i, u: ix.scatter_add(x, i, u)  # noqa: E731
    close(tj.vmap(g, (None, 0, 0))(x, idx, u), loop(g, (None, 0, 0), (x, idx, u)))
    close(tj.vmap(g, (0, None, None))(xs, idx[0], u[0]),
          loop(g, (0, None, None), (xs, idx[0], u[0])))
    c = lambda a, b: rd.cumlinrec(a, b, 0)  # noqa: E731
    a, b = rng.standard_normal((3, 5)), rng.standard_normal(5)
    close(tj.vmap(c, (0, None))(a, b), loop(c, (0, None), (a, b)))


def control(x, k):
    """cond on a batched predicate, switch, scan with a batched carry, a while loop whose
    predicate depends on the lane, fori_loop, checkpoint."""
    c = tj.cond(x[0] > 0, lambda v: tnp.sin(v) * 2.0, lambda v: v ** 2, x)
    s = tj.switch(k, [lambda v: v + 1.0, lambda v: v * 3.0, lambda v: -v], x)
    carry, ys = tj.scan(lambda c, xi: (c * 0.5 + xi, tnp.tanh(c)), 0.0, x)
    n, acc = tj.while_loop(lambda c: c[1] < 10.0,
                           lambda c: (c[0] + 1, c[1] + tnp.abs(c[0] * x[1]) + 1.0), (0, 0.0))
    f = tj.fori_loop(0, 3, lambda i, v: v * tnp.cos(v), x)
    ck = tj.checkpoint(lambda v: tnp.sum(tnp.exp(v)))(x)
    return {"cond": c, "switch": s, "carry": carry, "ys": ys, "n": n, "acc": acc, "fori": f,
            "ckpt": ck}


def test_control_flow_against_a_loop():
    x = rng.standard_normal((6, 4))
    k = np.array([0, 1, 2, 5, -1, 1])
    close(tj.vmap(control)(x, k), loop(control, (0, 0), (x, k)))
    close(tj.vmap(control, (0, None))(x, 1), loop(control, (0, None), (x, 1)))


def test_jit_of_vmap_of_control_flow():
    x = rng.standard_normal((6, 4))
    k = np.array([0, 1, 2, 5, -1, 1])
    close(tj.jit(tj.vmap(control))(x, k), loop(control, (0, 0), (x, k)))


def loss(w, x, y):
    z = x @ w
    return tnp.logaddexp(0.0, z) - y * z


def test_per_example_gradients_one_pass():
    X, y, w = rng.standard_normal((64, 8)), (rng.random(64) > 0.5) * 1.0, rng.standard_normal(8)
    f = tj.jit(tj.vmap(tj.grad(loss), in_axes=(None, 0, 0)))
    ref = loop(tj.grad(loss), (None, 0, 0), (w, X, y))
    close(f(w, X, y), ref)
    close(tj.vmap(tj.grad(loss), in_axes=(None, 0, 0))(w, X, y), ref)
    # the per-example gradients against central finite differences of each example's loss
    g, eps = f(w, X, y), 1e-6
    for i in (0, 5):
        fd = [(loss(w + eps * e, X[i], y[i]) - loss(w - eps * e, X[i], y[i])) / (2 * eps)
              for e in np.eye(8)]
        np.testing.assert_allclose(g[i], fd, rtol=1e-6, atol=1e-8)
    plan = f.lower(w, X, y).plan
    assert len(plan.kernels) == 1, plan


def test_grad_of_vmap_against_finite_differences():
    x, y = rng.standard_normal((5, 4, 3)), rng.standard_normal((5, 3))

    def total(x, y):
        out = tj.vmap(many)(x, y)
        return sum(tnp.sum(tnp.sin(v)) for k, v in out.items()
                   if k not in ("argmax", "convert", "stop_gradient"))
    check_grads(total, (x, y), modes=("rev",))

    def ctl(x):
        out = tj.vmap(control, (0, None))(x, 1)
        return sum(tnp.sum(out[k]) for k in ("cond", "switch", "carry", "ys", "fori", "ckpt"))
    check_grads(ctl, (rng.standard_normal((3, 4)),), modes=("fwd", "rev"))


def test_vmap_of_vmap_and_jvp_of_vmap():
    x, y = rng.standard_normal((3, 5, 4, 3)), rng.standard_normal((5, 3))
    got = tj.vmap(tj.vmap(many), in_axes=(0, None))(x, y)
    ref = {k: np.stack([v[k] for v in [loop(many, (0, 0), (xi, y)) for xi in x]])
           for k in many(x[0, 0], y[0])}
    close(got, ref)
    f = tj.vmap(lambda v: tnp.sin(v) * tnp.sum(v))
    xs = rng.standard_normal((4, 3))
    t = rng.standard_normal((4, 3))
    out, tan = tj.jvp(f, (xs,), (t,))
    close(out, loop(lambda v: tnp.sin(v) * tnp.sum(v), (0,), (xs,)))
    eps = 1e-6
    close(tan, (f(xs + eps * t) - f(xs - eps * t)) / (2 * eps), atol=1e-6)
    check_grads(lambda w, X, y: tnp.sum(tj.vmap(tj.grad(loss), (None, 0, 0))(w, X, y) ** 2),
                (rng.standard_normal(3), rng.standard_normal((4, 3)), rng.random(4)),
                modes=("rev",))


def test_pytrees_and_errors():
    f = lambda d, s: {"a": d["u"] * s, "b": tnp.sum(d["v"])}  # noqa: E731
    d = {"u": rng.standard_normal((4, 2)), "v": rng.standard_normal((3, 4))}
    got = tj.vmap(f, in_axes=({"u": 0, "v": 1}, None), out_axes={"a": 1, "b": 0})(d, 2.0)
    np.testing.assert_allclose(got["a"], (d["u"] * 2.0).T)
    np.testing.assert_allclose(got["b"], d["v"].sum(0))
    with pytest.raises(ValueError, match="inconsistent batch sizes"):
        tj.vmap(tnp.add)(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="out of range"):
        tj.vmap(tnp.sin, in_axes=2)(np.ones((3, 2)))
    with pytest.raises(ValueError, match="in_axes"):
        tj.vmap(tnp.add, in_axes=(0,))(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="in_axes"):
        tj.vmap(f, in_axes=({"u": 0}, None))(d, 2.0)
    with pytest.raises(ValueError, match="axis_size"):
        tj.vmap(tnp.sin, in_axes=None)(np.ones(3))
    np.testing.assert_allclose(tj.vmap(tnp.sin, in_axes=None, axis_size=2)(np.ones(3)),
                               np.sin(np.ones((2, 3))))
    with pytest.raises(ValueError, match="out_axes"):
        tj.vmap(tnp.sin, out_axes=None)(np.ones(3))


def test_unknown_primitive_names_itself():
    from tracejit.core import abstract_eval_rules, bind, impl_rules
    p = Primitive("no_batching_here")
    abstract_eval_rules[p] = lambda x: x
    impl_rules[p] = lambda x: x
    with pytest.raises(NotImplementedError, match="no_batching_here"):
        tj.vmap(lambda x: bind(p, x))(np.ones(3))


def test_every_primitive_has_a_batching_rule():
    import importlib
    import pkgutil

    import tracejit.primitives as pkg
    import tracejit.scipy.special  # noqa: F401  (its rows must get the rule too)
    prims = set()
    for m in pkgutil.iter_modules(pkg.__path__):
        mod = importlib.import_module(f"tracejit.primitives.{m.name}")
        prims |= {v for v in vars(mod).values() if isinstance(v, Primitive)}
    assert len(prims) > 50
    missing = sorted(p.name for p in prims if p not in batching_rules and p.name not in EXEMPT)
    assert not missing, f"no batching rule and no exemption: {missing}"
    from tracejit.primitives import special
    assert special.erf_p in batching_rules


def test_sorting_primitives():
    so = pytest.importorskip("tracejit.primitives.sorting")
    a = np.sort(rng.standard_normal((4, 6)), axis=1)
    v = rng.standard_normal((4, 3))
    for side in ("left", "right"):
        f = lambda a, v, s=side: so.searchsorted(a, v, s)  # noqa: E731
        close(tj.vmap(f)(a, v), loop(f, (0, 0), (a, v)))
        close(tj.vmap(f, (None, 0))(a[0], v), loop(f, (None, 0), (a[0], v)))
    g = lambda x: so.argsort(x, 0)  # noqa: E731
    close(tj.vmap(g, 1, 1)(v), loop(g, (1,), (v,), 1))


def test_jacobians_batch_their_unit_vectors_and_fall_back_to_a_loop(monkeypatch):
    from tracejit.primitives import elementwise as ew

    def f(x):
        return tnp.sin(x) * x[::-1]

    x = np.array([0.3, -0.5, 0.7, 1.1])
    hand = np.diag(np.cos(x) * x[::-1]) + np.sin(x)[:, None] * np.eye(4)[::-1]
    batched = [tj.jacfwd(f)(x), tj.jacrev(f)(x)]
    monkeypatch.delitem(batching_rules, ew.sin_p)  # vmap now fails: the loop path answers
    with pytest.raises(NotImplementedError, match="sin"):
        tj.vmap(f)(np.ones((2, 4)))
    looped = [tj.jacfwd(f)(x), tj.jacrev(f)(x)]
    for jac in batched + looped:
        np.testing.assert_allclose(jac, hand, rtol=1e-13, atol=1e-15)
