"""Numerically stable building blocks of losses: logsumexp, softmax, log_softmax, sigmoid,
relu, softplus. Written with `tracejit.numpy`, so they trace, differentiate and run on
NumPy arrays alike."""

from __future__ import annotations

from . import numpy as tnp
from .api import stop_gradient
from .custom_derivatives import custom_jvp
from .numpy._base import as_operand
from .primitives import elementwise as ew


def logsumexp(x, axis=None, keepdims=False):
    """log(sum(exp(x))) computed as m + log(sum(exp(x - m))) with m the (constant) max.

    Its derivative is a rule of its own (`custom_jvp`): the softmax weights, and zero where
    every entry is -inf (nothing has any weight; differentiating the formula gives 0/0)."""
    x = as_operand(x)
    x = tnp.asarray(x) if not hasattr(x, "dtype") else x
    x = tnp.astype(x, tnp.result_type(x, 0.0))
    if axis is not None:
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        axis = tuple(sorted(a % max(tnp.ndim(x), 1) for a in axes))
    return _logsumexp(x, axis, bool(keepdims))


def _shifted_exp(x, axis):
    """exp(x - m) and its sum, m the row max held constant (0 where it is not finite)."""
    m = stop_gradient(tnp.max(x, axis=axis, keepdims=True))
    m = tnp.where(tnp.isfinite(m), m, 0.0)
    e = tnp.exp(x - m)
    return m, e, tnp.sum(e, axis=axis, keepdims=True)


def _drop_axes(v, axis, keepdims):
    if keepdims:
        return v
    return tnp.squeeze(v, axis=axis) if axis is not None else tnp.reshape(v, ())


def _logsumexp_value(x, axis, keepdims):
    m, _, s = _shifted_exp(x, axis)
    return _drop_axes(tnp.log(s) + m, axis, keepdims)


_logsumexp = custom_jvp(_logsumexp_value, nondiff_argnums=(1, 2))


@_logsumexp.defjvp
def _logsumexp_jvp(axis, keepdims, primals, tangents):
    (x,), (t,) = primals, tangents
    # The same exp(x - m) and sum as the value (one array, shared by the compiled loops);
    # where every entry is -inf the sum is 0 and no entry has weight (the formula's
    # derivative would be 0/0).
    m, e, s = _shifted_exp(x, axis)
    weights = tnp.where(s > 0, e / s, 0.0)
    out = _drop_axes(tnp.log(s) + m, axis, keepdims)
    return out, _drop_axes(tnp.sum(weights * t, axis=axis, keepdims=True), axis, keepdims)


def log_softmax(x, axis=-1):
    """x - logsumexp(x): the log of softmax without forming exp(x), computed as
    (x - m) - log(sum(exp(x - m))) so that large |x| loses no precision to m."""
    x = as_operand(x)
    x = tnp.astype(x, tnp.result_type(x, 0.0))
    m = stop_gradient(tnp.max(x, axis=axis, keepdims=True))
    shifted = x - tnp.where(tnp.isfinite(m), m, 0.0)
    return shifted - tnp.log(tnp.sum(tnp.exp(shifted), axis=axis, keepdims=True))


def softmax(x, axis=-1):
    x = as_operand(x)
    x = tnp.astype(x, tnp.result_type(x, 0.0))
    m = stop_gradient(tnp.max(x, axis=axis, keepdims=True))
    e = tnp.exp(x - m)
    return e / tnp.sum(e, axis=axis, keepdims=True)


def sigmoid(x):
    """1 / (1 + exp(-x)), without overflow for large |x|."""
    x = as_operand(x)
    return ew.logistic(tnp.astype(x, tnp.result_type(x, 0.0)))


def relu(x):
    """max(x, 0), with derivative 0 at x == 0."""
    x = as_operand(x)
    return tnp.where(x > 0, x, 0)


def softplus(x):
    """log(1 + exp(x)) = logaddexp(x, 0)."""
    return tnp.logaddexp(x, 0.0)
