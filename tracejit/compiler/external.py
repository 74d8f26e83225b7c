"""User Numba functions that generated modules call (`numba_call`, `elementwise`).

A generated module names such a function `_tjx_<key>` and binds it at import from this
registry (`lookup(key)`); the key is a fingerprint of the function's code, so the module's
text, hence its cache file and Numba's cached machine code, changes when the function does.
A module that calls user functions therefore needs tracejit and the functions registered
(they are, by tracing the program that calls them) to run.
"""

from __future__ import annotations

import hashlib

_functions: dict[str, object] = {}


def fingerprint(kernel) -> str:
    """A key equal for the same code in every process: module, qualified name, bytecode,
    constants, names and the dispatcher's options."""
    py = kernel.py_func
    code = py.__code__
    parts = [py.__module__, py.__qualname__, code.co_code.hex(), repr(code.co_consts),
             repr(code.co_names), repr(sorted(getattr(kernel, "targetoptions", {}).items()))]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def register(kernel) -> str:
    """The global name generated code uses for `kernel` (registered under its key)."""
    key = fingerprint(kernel)
    _functions[key] = kernel
    return f"_tjx_{key}"


def lookup(key: str):
    try:
        return _functions[key]
    except KeyError:
        raise LookupError(
            f"a generated module calls the user Numba function {key}, which this process "
            "has not registered: trace the program (call it through tracejit) before "
            "importing its module") from None


def preamble(names) -> list[str]:
    """Module lines binding the user functions `names` (`_tjx_<key>`)."""
    lines = ["from tracejit.compiler.external import lookup as _tj_lookup", ""]
    lines += [f"{n} = _tj_lookup({n[len('_tjx_'):]!r})" for n in sorted(names)]
    return lines + [""]
