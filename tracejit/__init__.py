"""tracejit: trace NumPy-style code to a typed IR, differentiate it (forward mode, and
reverse mode by linearize + transpose), and print every stage."""

from . import errors, numpy, tree_util  # noqa: F401
from .api import (  # noqa: F401
    grad,
    hessian,
    jacfwd,
    jacrev,
    jvp,
    linearize,
    make_ir,
    stop_gradient,
    value_and_grad,
    vjp,
)
from .check import check_ir  # noqa: F401
from .compiler.buffers import release_buffers  # noqa: F401
from .control import checkpoint, cond, fori_loop, scan, switch, while_loop  # noqa: F401
from .custom_derivatives import custom_jvp, custom_vjp  # noqa: F401
from .ir import IR, ShapedArray  # noqa: F401
from .jit import disable_jit, jit  # noqa: F401
from .numba_interop import ShapeDtype, elementwise, numba_call  # noqa: F401
from .transforms.batching import vmap  # noqa: F401

__version__ = "0.1.0"
