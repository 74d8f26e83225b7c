"""Numerically stable building blocks of losses: logsumexp, softmax, log_softmax, sigmoid,
relu, softplus. Written with `tracejit.numpy`, so they trace, differentiate and run on
NumPy arrays alike."""

from __future__ import annotations

from . import numpy as tnp
from .api import stop_gradient
from .numpy._base import as_operand
from .primitives import elementwise as ew


def logsumexp(x, axis=None, keepdims=False):
    """log(sum(exp(x))) computed as m + log(sum(exp(x - m))) with m the (constant) max."""
    x = as_operand(x)
    x = tnp.asarray(x) if not hasattr(x, "dtype") else x
    x = tnp.astype(x, tnp.result_type(x, 0.0))
    m = stop_gradient(tnp.max(x, axis=axis, keepdims=True))
    m = tnp.where(tnp.isfinite(m), m, 0.0)
    s = tnp.sum(tnp.exp(x - m), axis=axis, keepdims=True)
    out = tnp.log(s) + m
    if not keepdims:
        out = tnp.squeeze(out, axis=axis) if axis is not None else tnp.reshape(out, ())
    return out


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
