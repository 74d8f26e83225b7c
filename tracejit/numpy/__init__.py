"""`tracejit.numpy`: NumPy's API on traced (and concrete) arrays.

Functions promote dtypes and broadcast as NumPy does, then bind a small set of primitives.
On concrete NumPy inputs they compute with NumPy; on traced values they record IR.
"""

from numpy import (  # noqa: F401  (dtypes and constants, as in NumPy)
    bool_,
    e,
    euler_gamma,
    float32,
    float64,
    inf,
    int8,
    int16,
    int32,
    int64,
    nan,
    ndarray,
    newaxis,
    pi,
    uint8,
    uint32,
    uint64,
)

from . import (
    _indexing,  # noqa: F401
    linalg,  # noqa: F401
)
from ._creation import (  # noqa: F401
    arange,
    array,
    asarray,
    astype,
    copy,
    empty,
    empty_like,
    eye,
    full,
    full_like,
    identity,
    linspace,
    ones,
    ones_like,
    zeros,
    zeros_like,
)
from ._functions import (  # noqa: F401
    allclose,
    angle,
    c_,
    convolve,
    correlate,
    cross,
    cumulative_sum,
    diff,
    gradient,
    imag,
    interp,
    isclose,
    kron,
    nan_to_num,
    nanargmax,
    nanargmin,
    nancumprod,
    nancumsum,
    nanmax,
    nanmean,
    nanmin,
    nanprod,
    nanstd,
    nansum,
    nanvar,
    piecewise,
    polyval,
    r_,
    real_if_close,
    select,
    trapezoid,
)
from ._indexing import nonzero, take, take_along_axis  # noqa: F401
from ._linalg import dot, einsum, inner, matmul, outer, tensordot, vdot  # noqa: F401
from ._methods import _install
from ._reductions import (  # noqa: F401
    all,
    amax,
    amin,
    any,
    argmax,
    argmin,
    count_nonzero,
    cumprod,
    cumsum,
    max,
    mean,
    min,
    prod,
    std,
    sum,
    var,
)
from ._shape import (  # noqa: F401
    append,
    array_split,
    atleast_1d,
    atleast_2d,
    atleast_3d,
    block,
    broadcast_arrays,
    broadcast_to,
    column_stack,
    concat,
    concatenate,
    delete,
    diag,
    diagonal,
    dsplit,
    dstack,
    expand_dims,
    flip,
    fliplr,
    flipud,
    hsplit,
    hstack,
    insert,
    moveaxis,
    pad,
    permute_dims,
    ravel,
    repeat,
    reshape,
    roll,
    rollaxis,
    rot90,
    split,
    squeeze,
    stack,
    swapaxes,
    tile,
    trace,
    transpose,
    tril,
    triu,
    vsplit,
    vstack,
)
from ._sorting import (  # noqa: F401
    argpartition,
    argsort,
    lexsort,
    median,
    nanmedian,
    nanpercentile,
    nanquantile,
    partition,
    percentile,
    quantile,
    searchsorted,
    sort,
    unique,
)
from ._ufuncs import (  # noqa: F401
    abs,
    absolute,
    add,
    arccos,
    arccosh,
    arcsin,
    arcsinh,
    arctan,
    arctan2,
    arctanh,
    around,
    bitwise_and,
    bitwise_or,
    bitwise_xor,
    cbrt,
    ceil,
    clip,
    conj,
    conjugate,
    copysign,
    cos,
    cosh,
    deg2rad,
    degrees,
    divide,
    equal,
    exp,
    exp2,
    expm1,
    fabs,
    fix,
    float_power,
    floor,
    floor_divide,
    fmax,
    fmin,
    greater,
    greater_equal,
    heaviside,
    hypot,
    invert,
    isfinite,
    isinf,
    isnan,
    less,
    less_equal,
    log,
    log1p,
    log2,
    log10,
    logaddexp,
    logaddexp2,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    maximum,
    minimum,
    mod,
    multiply,
    negative,
    nextafter,
    not_equal,
    positive,
    power,
    rad2deg,
    radians,
    real,
    reciprocal,
    remainder,
    rint,
    round,
    sign,
    signbit,
    sin,
    sinc,
    sinh,
    sqrt,
    square,
    subtract,
    tan,
    tanh,
    true_divide,
    trunc,
    where,
)

_install()
del _install


def shape(a):
    """Static shape of an array or traced array."""
    from ._base import shape as _shape
    return tuple(_shape(asarray(a)))


def ndim(a):
    return len(shape(a))


def size(a, axis=None):
    s = shape(a)
    if axis is None:
        import numpy as _np
        return int(_np.prod(s, dtype=_np.int64))
    return s[axis]


def result_type(*arrays_and_dtypes):
    import builtins

    import numpy as _np

    from ._base import result_dtype
    # `all` here is tracejit.numpy.all (defined in this module), not the builtin.
    if builtins.all(isinstance(x, (_np.dtype, type)) for x in arrays_and_dtypes):
        return _np.result_type(*arrays_and_dtypes)
    return result_dtype(*[x for x in arrays_and_dtypes])

