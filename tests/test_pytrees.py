"""Pytrees: the tree utilities, and transforms whose arguments and results are nested tuples,
lists, dicts, None, namedtuples and registered classes. Gradients mirror the input structure."""

from collections import OrderedDict, namedtuple

import numpy as np
import pytest
from conftest import checked_ir

import tracejit as tj
import tracejit.numpy as tnp
from tracejit.testing import check_grads
from tracejit.tree_util import (
    register_pytree_node,
    tree_flatten,
    tree_leaves,
    tree_map,
    tree_structure,
    tree_unflatten,
)

X3 = np.array([0.5, -1.0, 2.0])
Params = namedtuple("Params", ["w", "b"])


class Affine:
    """A user class: two array children and a hashable, non-array `name`."""

    def __init__(self, weight, bias, name="affine"):
        self.weight, self.bias, self.name = weight, bias, name

    def __call__(self, x):
        return x @ self.weight + self.bias


register_pytree_node(Affine, lambda a: ([a.weight, a.bias], a.name),
                     lambda name, children: Affine(children[0], children[1], name))


def close(actual, expected, rtol=1e-12):
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=rtol, atol=1e-12)


# -- tree utilities -----------------------------------------------------------------------------

def test_flatten_order_and_roundtrip():
    tree = {"b": [1.0, (2.0, None)], "a": Params(w=3.0, b=4.0), "c": OrderedDict(z=5.0, y=6.0)}
    leaves, treedef = tree_flatten(tree)
    assert leaves == [3.0, 4.0, 1.0, 2.0, 5.0, 6.0]  # dict keys sorted; OrderedDict kept
    rebuilt = tree_unflatten(treedef, leaves)
    assert rebuilt == tree
    assert type(rebuilt["a"]) is Params and type(rebuilt["c"]) is OrderedDict
    assert list(rebuilt["c"]) == ["z", "y"]
    assert tree_leaves(tree) == leaves
    assert treedef.num_leaves == 6
    assert tree_structure(tree) == treedef and hash(tree_structure(tree)) == hash(treedef)


def test_none_has_no_leaves_and_leaves_are_anything_else():
    assert tree_leaves(None) == []
    assert tree_leaves([None, (None,)]) == []
    assert tree_leaves(X3)[0] is X3
    assert tree_leaves("text") == ["text"]
    leaves, treedef = tree_flatten((1.0, None, [2.0]))
    assert leaves == [1.0, 2.0]
    assert tree_unflatten(treedef, [7.0, 8.0]) == (7.0, None, [8.0])


def test_tree_structure_distinguishes_containers():
    s = [tree_structure(t) for t in ((1.0, 2.0), [1.0, 2.0], {"a": 1.0, "b": 2.0},
                                     Params(1.0, 2.0), {"a": 1.0, "c": 2.0}, (1.0, (2.0,)))]
    assert len(set(s)) == len(s)
    assert tree_structure((1.0, 2.0)) == tree_structure((X3, "x"))


def test_unflatten_wrong_number_of_leaves():
    _, treedef = tree_flatten((1.0, [2.0, 3.0]))
    with pytest.raises(ValueError, match="3 leaves"):
        tree_unflatten(treedef, [1.0, 2.0])


def test_tree_map():
    tree = {"a": (1.0, 2.0), "b": [3.0], "c": None}
    assert tree_map(lambda x: x * 10, tree) == {"a": (10.0, 20.0), "b": [30.0], "c": None}
    other = {"a": (0.5, 0.25), "b": [1.0], "c": None}
    assert tree_map(lambda x, y: x + y, tree, other) == {"a": (1.5, 2.25), "b": [4.0],
                                                         "c": None}
    with pytest.raises(ValueError, match="structures differ"):
        tree_map(lambda x, y: x, tree, {"a": (1.0, 2.0), "b": [3.0, 4.0], "c": None})


def test_is_leaf():
    tree = {"p": (1.0, 2.0), "q": (3.0, 4.0)}
    leaves, treedef = tree_flatten(tree, is_leaf=lambda x: isinstance(x, tuple))
    assert leaves == [(1.0, 2.0), (3.0, 4.0)]
    assert tree_map(sum, tree, is_leaf=lambda x: isinstance(x, tuple)) == {"p": 3.0, "q": 7.0}
    assert tree_unflatten(treedef, ["x", "y"]) == {"p": "x", "q": "y"}


def test_registered_class_flattens_and_rebuilds():
    a = Affine(np.ones((3, 2)), np.zeros(2), name="layer1")
    leaves, treedef = tree_flatten(a)
    assert len(leaves) == 2 and leaves[0] is a.weight
    b = tree_unflatten(treedef, [2 * leaves[0], leaves[1] + 1])
    assert isinstance(b, Affine) and b.name == "layer1"
    close(b.weight, 2 * np.ones((3, 2)))
    # aux data is part of the structure
    assert tree_structure(Affine(1.0, 2.0, "x")) != tree_structure(Affine(1.0, 2.0, "y"))
    doubled = tree_map(lambda x: x * 2, a)
    assert isinstance(doubled, Affine) and doubled.name == "layer1"


def test_registering_twice_is_an_error():
    with pytest.raises(ValueError, match="already registered"):
        register_pytree_node(Affine, lambda a: ([], None), lambda _, c: None)


# -- transforms on pytrees -----------------------------------------------------------------------

def test_grad_of_tuple_and_list_arguments():
    def f(t):
        (a, b), c = t
        return tnp.sum(a * b) + c[0] ** 2

    g = tj.grad(f)(((X3, 2.0), [3.0]))
    assert isinstance(g, tuple) and isinstance(g[0], tuple) and isinstance(g[1], list)
    close(g[0][0], np.full(3, 2.0))
    assert float(g[0][1]) == pytest.approx(np.sum(X3))
    assert float(g[1][0]) == pytest.approx(6.0)


def test_grad_dict_mirrors_input():
    params = {"w": np.array([[1.0, 2.0], [0.5, -1.0], [0.0, 3.0]]), "b": np.array([0.1, -0.2])}

    def loss(p, x):
        return tnp.sum(tnp.tanh(x @ p["w"] + p["b"]) ** 2)

    g = tj.grad(loss)(params, X3)
    assert isinstance(g, dict) and set(g) == {"w", "b"}
    assert g["w"].shape == (3, 2) and g["b"].shape == (2,)
    t = np.tanh(X3 @ params["w"] + params["b"])
    d = 2 * t * (1 - t ** 2)
    close(g["b"], d)
    close(g["w"], np.outer(X3, d))
    check_grads(loss, (params, X3), order=2)


def test_grad_nested_pytree_with_none_leaves():
    tree = {"layers": [{"w": X3, "extra": None}, {"w": 2.0 * X3, "extra": None}], "s": 1.5}

    def f(t):
        return t["s"] * tnp.sum(t["layers"][0]["w"] * t["layers"][1]["w"])

    g = tj.grad(f)(tree)
    assert tree_structure(g) == tree_structure(tree)
    assert g["layers"][0]["extra"] is None
    close(g["layers"][0]["w"], 1.5 * 2.0 * X3)
    close(g["layers"][1]["w"], 1.5 * X3)
    assert float(g["s"]) == pytest.approx(np.sum(2 * X3 * X3))


def test_grad_namedtuple():
    p = Params(w=X3, b=0.5)
    g = tj.grad(lambda p, x: tnp.sum((p.w * x + p.b) ** 2))(p, np.ones(3))
    assert type(g) is Params
    close(g.w, 2 * (X3 + 0.5))
    assert float(g.b) == pytest.approx(np.sum(2 * (X3 + 0.5)))


def test_grad_registered_class():
    layer = Affine(np.array([[1.0, 0.5], [-1.0, 2.0], [0.0, 1.0]]), np.array([0.2, 0.3]),
                   name="dense")

    def loss(layer, x):
        return tnp.sum(layer(x) ** 2)

    g = tj.grad(loss)(layer, X3)
    assert isinstance(g, Affine) and g.name == "dense"
    y = X3 @ layer.weight + layer.bias
    close(g.bias, 2 * y)
    close(g.weight, np.outer(X3, 2 * y))
    check_grads(loss, (layer, X3), order=1)


def test_grad_argnums_tuple_of_pytrees():
    f = lambda a, b: tnp.sum(a["x"] * b[0]) * b[1]
    ga, gb = tj.grad(f, argnums=(0, 1))({"x": X3}, (np.ones(3), 2.0))
    assert set(ga) == {"x"} and isinstance(gb, tuple)
    close(ga["x"], np.full(3, 2.0))
    close(gb[0], 2.0 * X3)
    assert float(gb[1]) == pytest.approx(np.sum(X3))


def test_has_aux_pytree():
    def f(x):
        return tnp.sum(x ** 2), {"stats": (tnp.mean(x), None), "x": [x]}

    g, aux = tj.grad(f, has_aux=True)(X3)
    close(g, 2 * X3)
    assert aux["stats"][1] is None
    assert float(aux["stats"][0]) == pytest.approx(np.mean(X3))
    close(aux["x"][0], X3)


def test_jvp_pytree_inputs_and_outputs():
    def f(p):
        return {"prod": p.w * p.b, "pair": (tnp.sin(p.w), None)}

    p, t = Params(w=X3, b=2.0), Params(w=np.array([1.0, 0.0, -1.0]), b=0.5)
    y, ty = tj.jvp(f, (p,), (t,))
    assert tree_structure(y) == tree_structure(ty) == tree_structure(f(p))
    close(y["prod"], 2.0 * X3)
    close(ty["prod"], t.w * 2.0 + X3 * 0.5)
    close(ty["pair"][0], np.cos(X3) * t.w)
    assert ty["pair"][1] is None


def test_vjp_pytree_inputs_and_outputs():
    def f(d, s):
        return [d["a"] * s, {"total": tnp.sum(d["a"]) + d["b"]}]

    y, f_vjp = tj.vjp(f, {"a": X3, "b": 1.0}, 3.0)
    close(y[0], 3 * X3)
    assert float(y[1]["total"]) == pytest.approx(np.sum(X3) + 1.0)
    u0 = np.array([1.0, 2.0, 3.0])
    gd, gs = f_vjp([u0, {"total": 2.0}])
    assert set(gd) == {"a", "b"}
    close(gd["a"], 3 * u0 + 2.0)
    assert float(gd["b"]) == pytest.approx(2.0)
    assert float(gs) == pytest.approx(np.dot(u0, X3))
    check_grads(f, ({"a": X3, "b": 1.0}, 3.0), order=1)


def test_linearize_pytree_output():
    y, f_jvp = tj.linearize(lambda x: (x * 2.0, {"s": tnp.sum(x ** 2)}), X3)
    close(y[0], 2 * X3)
    ty = f_jvp(np.ones(3))
    close(ty[0], np.full(3, 2.0))
    assert float(ty[1]["s"]) == pytest.approx(np.sum(2 * X3))


def test_jacobians_of_pytree_functions():
    f = lambda d: {"y": d["a"] * d["b"], "s": tnp.sum(d["a"])}
    for jac in (tj.jacfwd, tj.jacrev):
        J = jac(f)({"a": X3, "b": 2.0})
        close(J["y"]["a"], 2.0 * np.eye(3))
        close(J["y"]["b"], X3)
        close(J["s"]["a"], np.ones(3))
        assert float(J["s"]["b"]) == 0.0
    H = tj.hessian(lambda d: tnp.sum(d["a"] ** 2) * d["b"])({"a": X3, "b": 2.0})
    close(H["a"]["a"], 4.0 * np.eye(3))
    close(H["a"]["b"], 2 * X3)
    close(H["b"]["a"], 2 * X3)
    assert float(H["b"]["b"]) == 0.0


def test_make_ir_pytree_arguments_and_output():
    ir = checked_ir(lambda p, d: {"z": p.w * d["k"], "none": None}, Params(X3, 1.0),
                    {"k": 2.0})
    lines = str(ir).splitlines()
    assert lines[0] == "ir f(a: f64[3], b: f64[], c: f64[]) -> f64[3]"
    assert ir.extra["out_tree"] == tree_structure({"z": 0.0, "none": None})


def test_pytree_structure_is_part_of_the_trace_cache_key():
    calls = []

    def f(t):
        calls.append(1)
        return tnp.sum(tnp.stack(tree_leaves(t)))

    g = tj.grad(f)
    g({"a": 1.0, "b": 2.0})
    g({"a": 3.0, "b": 4.0})
    assert len(calls) == 1
    r = g({"a": 1.0, "c": 2.0})  # different keys: a new structure
    assert len(calls) == 2 and set(r) == {"a", "c"}
    g((1.0, 2.0))
    assert len(calls) == 3
    g(Affine(1.0, 2.0, "one"))
    g(Affine(1.0, 2.0, "two"))  # different aux data
    assert len(calls) == 5
