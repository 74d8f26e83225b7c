"""Dtype helpers: NumPy's promotion rules (NEP 50), short names for printing, kinds."""

from __future__ import annotations

import numpy as np

float64 = np.dtype("float64")
float32 = np.dtype("float32")
int64 = np.dtype("int64")
int32 = np.dtype("int32")
bool_ = np.dtype("bool")
complex64 = np.dtype("complex64")
complex128 = np.dtype("complex128")

_SHORT = {
    "float64": "f64", "float32": "f32", "float16": "f16",
    "int64": "i64", "int32": "i32", "int16": "i16", "int8": "i8",
    "uint64": "u64", "uint32": "u32", "uint16": "u16", "uint8": "u8",
    "bool": "bool", "complex64": "c64", "complex128": "c128",
}


def short_name(dtype: np.dtype) -> str:
    return _SHORT.get(np.dtype(dtype).name, np.dtype(dtype).name)


def is_float(dtype) -> bool:
    return np.issubdtype(dtype, np.floating)


def is_complex(dtype) -> bool:
    return np.issubdtype(dtype, np.complexfloating)


def is_inexact(dtype) -> bool:
    """Float or complex: the dtypes that carry derivatives."""
    return np.issubdtype(dtype, np.inexact)


def real_dtype(dtype) -> np.dtype:
    """The dtype of the real and imaginary parts (float32 for complex64); reals map to
    themselves."""
    dtype = np.dtype(dtype)
    return np.dtype(dtype.char.lower()) if is_complex(dtype) else dtype


def complex_dtype(dtype) -> np.dtype:
    """The complex dtype with `dtype`'s precision (complex64 for float32, else
    complex128)."""
    dtype = np.dtype(dtype)
    if is_complex(dtype):
        return dtype
    return complex64 if dtype in (float32, np.dtype("float16")) else complex128


def is_int(dtype) -> bool:
    return np.issubdtype(dtype, np.integer)


def is_bool(dtype) -> bool:
    return np.dtype(dtype) == bool_


def check_supported(dtype) -> np.dtype:
    """Supported dtypes are bool, signed/unsigned ints, float32/float64 and
    complex64/complex128."""
    dtype = np.dtype(dtype)
    if dtype.kind in "biu" or dtype in (float32, float64, complex64, complex128):
        return dtype
    if dtype == np.dtype("float16"):
        return dtype
    raise TypeError(
        f"tracejit does not support arrays of dtype {dtype}: use bool, integer, float32, "
        "float64, complex64 or complex128 arrays"
    )


def _weak_standin(dtype: np.dtype):
    """A Python scalar of the same kind: NumPy's promotion treats it as weakly typed."""
    kind = np.dtype(dtype).kind
    return {"b": False, "i": 0, "u": 0, "f": 0.0, "c": 0j}[kind]


def result_type(*items) -> np.dtype:
    """NumPy promotion over (dtype, weak) pairs: weak entries act like Python scalars."""
    strong = [np.dtype(d) for d, weak in items if not weak]
    weak = [_weak_standin(d) for d, weak in items if weak]
    if not strong:
        # Only Python scalars: NumPy's defaults (bool, int64, float64).
        return np.result_type(*[np.asarray(w) for w in weak])
    return np.result_type(*strong, *weak)


def float_result(dtype) -> np.dtype:
    """Dtype of a float-valued function of `dtype` (sin of ints is float64, as in NumPy;
    complex stays complex)."""
    dtype = np.dtype(dtype)
    return dtype if is_inexact(dtype) else float64
