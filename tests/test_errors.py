"""Errors users see: wrong output shapes or dtypes for grad, Python control flow on traced
values, shape mismatches, unsupported NumPy functions, leaked tracers and bad arguments.
Errors about traced values must name the user's source file and line."""

import inspect
import os

import numpy as np
import pytest

import tracejit as tj
import tracejit.numpy as tnp
from tracejit.errors import ConcretizationError, EscapedTracerError, ShapeError

THIS_FILE = os.path.abspath(__file__)
X3 = np.array([0.5, -1.0, 2.0])


def line_of(fn, text: str) -> int:
    """Absolute line number in this file of the first line of `fn` containing `text`."""
    lines, start = inspect.getsourcelines(fn)
    for k, line in enumerate(lines):
        if text in line:
            return start + k
    raise LookupError(text)


def assert_names_line(message: str, fn, text: str):
    assert f"{THIS_FILE}:{line_of(fn, text)}" in message, message
    assert text.strip() in message  # the offending source text is shown too


# -- grad's contract ---------------------------------------------------------------------------

@pytest.mark.parametrize("transform", [tj.grad, tj.value_and_grad])
def test_grad_of_non_scalar_output(transform):
    with pytest.raises(TypeError, match="scalar") as info:
        transform(lambda x: x * 2.0)(X3)
    assert "(3,)" in str(info.value)
    with pytest.raises(TypeError, match="scalar"):
        transform(lambda x: tnp.reshape(tnp.sum(x), (1,)))(X3)


def test_grad_of_integer_output():
    with pytest.raises(TypeError, match="int64"):
        tj.grad(lambda x: tnp.argmax(x))(X3)


@pytest.mark.parametrize("arg, dtype", [
    (np.arange(3), "int64"),
    (3, "int64"),
    (np.int32(3), "int32"),
    (True, "bool"),
    (np.array([True, False]), "bool"),
])
@pytest.mark.parametrize("transform", [tj.grad, tj.value_and_grad])
def test_differentiating_non_float_argument_names_the_dtype(arg, dtype, transform):
    with pytest.raises(TypeError, match=dtype) as info:
        transform(lambda x: tnp.sum(x * 1.5))(arg)
    assert "argument 0" in str(info.value)


def test_differentiating_int_in_argnums_tuple_names_the_argument():
    f = lambda x, n: tnp.sum(x * n)
    with pytest.raises(TypeError, match="int64") as info:
        tj.grad(f, argnums=(0, 1))(X3, np.arange(3))
    assert "argument 1" in str(info.value)
    # Leaving the integer out of argnums is fine.
    np.testing.assert_allclose(tj.grad(f)(X3, np.arange(3)), [0.0, 1.0, 2.0])


@pytest.mark.parametrize("jac", [tj.jacfwd, tj.jacrev, tj.hessian])
def test_jacobians_of_integer_argument(jac):
    with pytest.raises(TypeError, match="int64"):
        jac(lambda x: x * 2)(np.arange(3))


def test_argnums_out_of_range():
    with pytest.raises(ValueError, match="argnums"):
        tj.grad(lambda x, y: tnp.sum(x * y), argnums=2)(X3, X3)


def test_has_aux_requires_a_pair():
    with pytest.raises(TypeError, match="pair"):
        tj.grad(lambda x: tnp.sum(x), has_aux=True)(X3)


def test_jvp_tangent_mismatches():
    with pytest.raises(ValueError, match="structure"):
        tj.jvp(lambda x: x, (1.0,), ((1.0,),))
    with pytest.raises(ValueError, match=r"\(2,\).*\(3,\)"):
        tj.jvp(lambda x: x, (X3,), (np.ones(2),))


def test_vjp_cotangent_structure_mismatch():
    _, f_vjp = tj.vjp(lambda x: (x, tnp.sum(x)), X3)
    with pytest.raises(ValueError, match="structure"):
        f_vjp(np.ones(3))


# -- concretization ----------------------------------------------------------------------------

def branch_on_traced(x):
    if x > 0:
        return x
    return -x


def float_of_traced(x):
    y = x * 2.0
    return float(y)


def int_of_traced(x):
    n = int(x)
    return x * n


def bool_of_traced(x):
    flag = bool(x)
    return x if flag else -x


def while_on_traced(x):
    while tnp.sum(x) < 10.0:
        x = x * 2.0
    return x


def item_of_traced(x):
    return x * x.item()


def asarray_of_traced(x):
    return np.asarray(x) * x


def index_with_traced(x):
    return tnp.sum(X3[x])


CONCRETIZATIONS = [
    (branch_on_traced, "if x > 0:", 1.0),
    (float_of_traced, "return float(y)", 1.0),
    (int_of_traced, "n = int(x)", 1.0),
    (bool_of_traced, "flag = bool(x)", 1.0),
    (while_on_traced, "while tnp.sum(x) < 10.0:", X3),
    (item_of_traced, "return x * x.item()", 1.0),
    (asarray_of_traced, "return np.asarray(x) * x", X3),
]


@pytest.mark.parametrize("transform", ["make_ir", "grad", "jvp", "vjp", "grad_of_grad"])
@pytest.mark.parametrize("fn, text, arg", CONCRETIZATIONS)
def test_concretization_error_names_the_user_line(fn, text, arg, transform):
    def scalar_fn(x):
        return tnp.sum(fn(x))

    run = {
        "make_ir": lambda: tj.make_ir(fn)(arg),
        "grad": lambda: tj.grad(scalar_fn)(arg),
        "jvp": lambda: tj.jvp(fn, (arg,), (arg,)),
        "vjp": lambda: tj.vjp(fn, arg),
        "grad_of_grad": lambda: tj.grad(tj.grad(scalar_fn))(1.0),
    }[transform]
    with pytest.raises(ConcretizationError) as info:
        run()
    assert isinstance(info.value, TypeError)
    message = str(info.value)
    assert_names_line(message, fn, text)
    assert "tnp.where" in message


def test_concretization_error_when_indexing_with_a_traced_value():
    with pytest.raises(TypeError) as info:
        tj.make_ir(index_with_traced)(np.int64(1))
    assert f"{THIS_FILE}:{line_of(index_with_traced, 'X3[x]')}" in str(info.value)


def test_tnp_where_is_the_fix():
    f = lambda x: tnp.sum(tnp.where(x > 0, x ** 2, -x))
    np.testing.assert_allclose(tj.grad(f)(X3), np.where(X3 > 0, 2 * X3, -1.0))


# -- shapes ------------------------------------------------------------------------------------

def add_mismatched(a, b):
    c = a + b
    return c


def ufunc_mismatched(a, b):
    return np.multiply(a, b) * 2.0


def matmul_mismatched(a, b):
    return tnp.sum(a @ b)


@pytest.mark.parametrize("fn, text", [(add_mismatched, "c = a + b"),
                                      (ufunc_mismatched, "np.multiply(a, b)")])
def test_broadcast_mismatch_names_shapes_and_line(fn, text):
    for run in (lambda: tj.make_ir(fn)(np.ones(3), np.ones(4)),
                lambda: tj.grad(lambda a, b: tnp.sum(fn(a, b)))(np.ones(3), np.ones(4)),
                lambda: tj.jvp(fn, (np.ones(3), np.ones(4)), (np.ones(3), np.ones(4)))):
        with pytest.raises(ShapeError) as info:
            run()
        assert isinstance(info.value, ValueError)
        message = str(info.value)
        assert "(3,)" in message and "(4,)" in message
        assert_names_line(message, fn, text)


def test_broadcast_mismatch_two_dimensional():
    with pytest.raises(ShapeError) as info:
        tj.make_ir(add_mismatched)(np.ones((2, 3)), np.ones((3, 2)))
    assert "(2, 3)" in str(info.value) and "(3, 2)" in str(info.value)


def test_matmul_mismatch_names_shapes_and_line():
    with pytest.raises(ShapeError) as info:
        tj.grad(matmul_mismatched)(np.ones((2, 3)), np.ones((4, 2)))
    message = str(info.value)
    assert "(2, 3)" in message and "(4, 2)" in message
    assert_names_line(message, matmul_mismatched, "a @ b")


# -- unsupported NumPy functions ---------------------------------------------------------------

@pytest.mark.parametrize("call, name", [
    (lambda x: np.fft.fft(x, out=np.empty(3, complex)).real, "out="),
    (lambda x: np.linalg.qr(tnp.outer(x, x), mode="raw")[0], "mode='raw'"),
    (lambda x: np.unique(x, return_counts=True)[0], "return_index/inverse/counts"),
])
def test_unsupported_numpy_function(call, name):
    with pytest.raises(NotImplementedError, match=name):
        tj.make_ir(call)(X3)
    with pytest.raises(NotImplementedError, match=name):
        tj.grad(lambda x: tnp.sum(call(x)))(X3)


def test_numpy_fft_and_linalg_calls_on_tracers_use_tracejit():
    def f(x):
        return tnp.sum(np.abs(np.fft.rfft(x)) ** 2) + np.linalg.svd(tnp.outer(x, x))[1][0]
    assert "fft" in str(tj.make_ir(f)(X3))
    want = np.sum(np.abs(np.fft.rfft(X3)) ** 2) + np.linalg.svd(np.outer(X3, X3))[1][0]
    np.testing.assert_allclose(f(X3), want, rtol=1e-12)
    z = X3 + 1j * X3[::-1]
    np.testing.assert_allclose(tj.grad(lambda z: tnp.sum(z.real * z.imag + z.conj().real))(z),
                               X3[::-1] + 1j * -X3 + 1, rtol=1e-12)


def test_unique_of_traced_array_asks_for_a_static_size():
    with pytest.raises(ConcretizationError, match="size="):
        tj.make_ir(lambda x: np.unique(x))(X3)


# -- leaked tracers ----------------------------------------------------------------------------

def test_tracer_leaked_through_a_global_is_detected():
    leaked = []

    def f(x):
        leaked.append(x)
        return x * 2.0

    tj.make_ir(f)(X3)
    (tracer,) = leaked
    for use in (lambda: tracer + 1.0,
                lambda: tnp.sin(tracer),
                lambda: np.sin(tracer),
                lambda: tj.grad(lambda y: tnp.sum(y * tracer))(X3)):
        with pytest.raises(EscapedTracerError) as info:
            use()
        assert f"{THIS_FILE}:" in str(info.value)


def test_tracer_leaked_from_inner_trace_into_outer_trace():
    box = []

    def outer(x):
        def inner(y):
            box.append(y)
            return y * x
        tj.grad(inner)(x)
        return box[0] * x  # the inner trace has finished

    with pytest.raises(EscapedTracerError):
        tj.grad(outer)(2.0)


def test_leaked_tracer_is_a_runtime_error_with_a_helpful_repr():
    leaked = []
    tj.make_ir(lambda x: leaked.append(x) or x)(X3)
    assert "f64[3]" in repr(leaked[0])
    with pytest.raises(RuntimeError, match="escaped"):
        leaked[0] * 2.0


# -- bad arguments and outputs -----------------------------------------------------------------

@pytest.mark.parametrize("bad, name", [("abc", "str"), (object(), "object"),
                                       (b"xy", "bytes"), ({1, 2}, "set")])
def test_object_and_string_arguments(bad, name):
    for run in (lambda: tj.make_ir(lambda x: x)(bad),
                lambda: tj.grad(lambda x: x)(bad),
                lambda: tj.jvp(lambda x: x, (bad,), (bad,)),
                lambda: tj.vjp(lambda x: x, bad)):
        with pytest.raises(TypeError) as info:
            run()
        message = str(info.value)
        assert name in message and "static" in message, message


def test_string_array_and_extended_precision_complex_arguments():
    with pytest.raises(TypeError, match="dtype"):
        tj.make_ir(lambda x: x)(np.array(["a", "b"]))
    # complex64/complex128 trace; extended-precision complex is named as unsupported
    assert "c128[1]" in str(tj.make_ir(lambda x: x)(np.array([1j])))
    with pytest.raises(TypeError, match="complex256|clongdouble"):
        tj.make_ir(lambda x: x)(np.array([1j], dtype=np.clongdouble))


def test_non_array_argument_can_be_static():
    ir = tj.make_ir(lambda x, s: x * len(s), static_argnums=1)(X3, "abc")
    tj.check_ir(ir)
    assert "mul a 3" in str(ir)


def test_non_array_output_is_a_clear_error():
    with pytest.raises(TypeError, match="output") as info:
        tj.make_ir(lambda x: (x, "label"))(X3)
    assert "str" in str(info.value)
