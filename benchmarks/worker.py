"""Measure one (workload, case, system) in this fresh process and write the result as JSON.

    python -m benchmarks.worker --workload W1 --case n=1e6 --system tracejit \\
        --phase cold --result out.json

Phase `cold`: import time, first call (build + trace + compile + first run), steady-state
time, peak RSS (of the process, and during the steady calls alone) and the error against the
float64 numpy-hand reference. Phase `warm`: only
the first call (and its error), meant for a second process that finds the disk cache
filled by the first. Phase `lower` (tracejit only): the time of `lower()` (trace, optimize,
generate the source, no Numba compilation) and the size of the generated source, in a
process of its own so that they are known even when compiling never finishes.

The result file is rewritten at every stage, so a worker the runner kills on timeout still
says how far it got. The runner starts every worker with its own environment (threads,
cache directories); see runner.py.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import resource
import sys
import time
import traceback


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb() -> float:
    """Current resident set size of this process, in MB."""
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    """Peak RSS of this process since its exec (VmHWM). `ru_maxrss` is recorded too but
    is not used: Linux carries it over from the forking parent's memory across exec."""
    return _status_mb("VmHWM")


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to clear_refs), so that a later
    `peak_rss_mb()` is the peak since now. False if the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def ru_maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has been busy (all cores, from /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def time_calls(fn, args, min_reps: int, min_time: float, max_time: float,
               sample_time: float) -> dict:
    """Median per-call time. Calls are timed in batches of k (k > 1 only for calls shorter
    than `sample_time`), with the GC off; sampling stops once there are `min_reps` samples
    and `min_time` seconds have passed, or after `max_time` seconds (at least 3 samples)."""
    t = time.perf_counter()
    fn(*args)  # warm-up, also used to size the batches
    once = time.perf_counter() - t
    k = max(1, min(100_000, int(sample_time / max(once, 1e-9))))
    samples = []
    cpu0, busy0, start = time.process_time(), busy_cpu_s(), time.perf_counter()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while True:
            t = time.perf_counter()
            for _ in range(k):
                fn(*args)
            samples.append((time.perf_counter() - t) / k)
            elapsed = time.perf_counter() - start
            if (len(samples) >= min_reps and elapsed >= min_time) or \
                    (elapsed >= max_time and len(samples) >= 3):
                break
    finally:
        if gc_was_enabled:
            gc.enable()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - start
    other = (busy_cpu_s() - busy0 - cpu) / wall if wall > 0 else None
    samples.sort()
    n = len(samples)
    return {"median_s": samples[n // 2] if n % 2 else 0.5 * (samples[n // 2 - 1] + samples[n // 2]),
            "min_s": samples[0], "p25_s": samples[n // 4], "p75_s": samples[(3 * n) // 4],
            "reps": n, "batch": k, "cpu_per_wall": cpu / wall if wall > 0 else None,
            "other_cores_busy": max(0.0, other) if other is not None else None}


def compare(wl, out, ref) -> dict:
    """Max relative error (inf-norm per array, max over arrays) against the reference."""
    import numpy as np

    from .workloads import flatten_output

    value, grads = flatten_output(wl, out)
    ref_value, ref_grads = ref
    result = {"max_rel_err": None, "value_rel_err": None, "problems": []}
    if len(grads) != len(ref_grads):
        result["problems"].append(f"{len(grads)} gradients, expected {len(ref_grads)}")
        return result
    errs = []
    for i, (g, r) in enumerate(zip(grads, ref_grads)):
        if g.shape != r.shape:
            result["problems"].append(f"gradient {i} has shape {g.shape}, expected {r.shape}")
            continue
        if str(g.dtype) != wl.dtype:
            result["problems"].append(f"gradient {i} is {g.dtype}, inputs are {wl.dtype}")
        if not np.all(np.isfinite(g)):
            result["problems"].append(f"gradient {i} has non-finite entries")
            continue
        scale = float(np.max(np.abs(r))) or 1.0
        errs.append(float(np.max(np.abs(g.astype(np.float64) - r))) / scale)
    if errs:
        result["max_rel_err"] = max(errs)
    if ref_value is not None:
        result["value_rel_err"] = abs(float(value) - float(ref_value)) / (
            abs(float(ref_value)) or 1.0)
    tol = 1e-4 if wl.dtype == "float32" else 1e-8
    worst = max([e for e in (result["max_rel_err"], result["value_rel_err"]) if e is not None],
                default=None)
    shape_ok = not any("shape" in p or "non-finite" in p or "expected" in p
                       for p in result["problems"])
    result["correct"] = bool(shape_ok and worst is not None and worst <= tol)
    result["tolerance"] = tol
    return result


def thread_info() -> dict:
    """Thread settings as this process sees them."""
    info = {k: os.environ.get(k) for k in (
        "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
        "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    try:
        import threadpoolctl

        info["blas"] = [{"api": p.get("internal_api"), "threads": p.get("num_threads"),
                         "library": os.path.basename(p.get("filepath", ""))}
                        for p in threadpoolctl.threadpool_info()]
    except ImportError:
        info["blas"] = "unknown (threadpoolctl not installed)"
    if "numba" in sys.modules:
        numba = sys.modules["numba"]
        info["numba_num_threads"] = numba.config.NUMBA_NUM_THREADS
        info["numba_get_num_threads"] = numba.get_num_threads()
        try:
            info["numba_threading_layer"] = numba.threading_layer()
        except ValueError:
            info["numba_threading_layer"] = "not initialised (no parallel kernel ran)"
    if "torch" in sys.modules:
        info["torch_threads"] = sys.modules["torch"].get_num_threads()
    if "jax" in sys.modules:
        info["jax_devices"] = str(sys.modules["jax"].devices())
        info["XLA_FLAGS"] = os.environ.get("XLA_FLAGS")
    if "drjit" in sys.modules:
        info["drjit_threads"] = sys.modules["drjit"].thread_count()
    return info


def source_texts(source) -> list[str]:
    """The generated module texts of a tracejit `Lowered.source`: one string, or a collection
    of modules (a sequence or dict of strings, or of objects with a `.source`)."""
    if isinstance(source, str):
        return [source]
    if isinstance(source, dict):
        source = source.values()
    if hasattr(source, "source"):
        return source_texts(source.source)
    return [text for item in source for text in source_texts(item)]


def source_size(source) -> tuple[int, int | None]:
    """(characters, number of modules) of a generated source. An object that reports its own
    `total_size` is trusted; otherwise the texts are measured."""
    total = getattr(source, "total_size", None)
    if total is not None:
        total = total() if callable(total) else total
        return int(total), (len(source) if hasattr(source, "__len__") else None)
    texts = source_texts(source)
    return sum(len(t) for t in texts), len(texts)


def generated_uses_prange(fn, args):
    """For tracejit: does the generated module use prange? None if it cannot be told."""
    try:
        return any("prange" in t for t in source_texts(fn.lower(*args).source))
    except Exception:
        return None


def measure_lower(fn, args, res: dict) -> None:
    """Time `lower()` and size the source it generates (no Numba compilation happens)."""
    t = time.perf_counter()
    low = fn.lower(*args)
    res["lower_s"] = time.perf_counter() - t
    res["source_chars"], res["source_modules"] = source_size(low.source)
    segments = getattr(getattr(low, "generated", None), "segments", None)
    if isinstance(segments, (list, tuple)):  # one string holding a driver and its modules
        res["source_modules"] = 1 + len(segments)
    consts = getattr(low, "consts", None)
    if consts is not None:
        res["lowered_consts"] = len(consts)


def save(opts, res: dict) -> None:
    with open(opts.result, "w") as f:
        json.dump(res, f, indent=1, default=str)


def measure(opts, res: dict) -> None:
    """Fill `res` in place, so that a failure leaves behind how far it got; the result file
    is rewritten at each stage for the same reason (a timeout kills this process)."""

    def stage(name: str) -> None:
        res["stage"] = name
        save(opts, res)

    res.update(pid=os.getpid(), loadavg_start=os.getloadavg(), status="error")
    stage("import")
    t = time.perf_counter()
    workloads = importlib.import_module("benchmarks.workloads")  # imports numpy
    system = workloads.SYSTEMS[opts.system]
    try:
        system.import_modules()
    except ImportError as e:
        res.update(status="not-installed", error=f"{type(e).__name__}: {e}")
        return
    res["import_s"] = time.perf_counter() - t
    res["rss_imports_mb"] = rss_mb()

    stage("inputs")
    wl = workloads.WORKLOADS[opts.workload]
    case = wl.case(opts.case)
    inputs = wl.inputs(case)
    res["rss_data_mb"] = rss_mb()

    if opts.phase == "lower":
        stage("lower")
        fn, args = system.build(wl, inputs)
        measure_lower(fn, args, res)
        res["loadavg_end"] = os.getloadavg()
        res["status"] = "ok"
        del res["stage"]
        return

    stage("first call")
    t = time.perf_counter()
    fn, args = system.build(wl, inputs)
    out = fn(*args)
    res["first_call_s"] = time.perf_counter() - t

    if opts.phase == "warm":
        res.update(compare(wl, out, workloads.reference(wl, inputs)))
    else:
        del out  # hold no result during the loop, so peak RSS is the system's own
        gc.collect()
        stage("steady state")
        first_peak = peak_rss_mb()  # imports, inputs, build, compile and the first call
        steady_hwm = reset_peak_rss()
        res["rss_steady_start_mb"] = rss_mb()
        res.update(time_calls(fn, args, opts.min_reps, opts.min_time, opts.max_time,
                              opts.sample_time))
        res["peak_rss_mb"] = max(first_peak, peak_rss_mb())
        if steady_hwm:  # what one call needs on top of what the process holds between calls
            res["steady_peak_rss_mb"] = peak_rss_mb()
            res["call_mb"] = res["steady_peak_rss_mb"] - res["rss_steady_start_mb"]
        res["ru_maxrss_mb"] = ru_maxrss_mb()
        stage("check")
        out = fn(*args)
        res.update(compare(wl, out, workloads.reference(wl, inputs)))
        if opts.system.startswith("tracejit"):
            res["generated_prange"] = generated_uses_prange(fn, args)
    res["threads"] = thread_info()
    res["loadavg_end"] = os.getloadavg()
    res["status"] = "ok"
    del res["stage"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workload", required=True)
    p.add_argument("--case", required=True)
    p.add_argument("--system", required=True)
    p.add_argument("--phase", choices=("cold", "warm", "lower"), default="cold")
    p.add_argument("--result", required=True, help="JSON file to write")
    p.add_argument("--min-reps", type=int, default=20)
    p.add_argument("--min-time", type=float, default=2.0)
    p.add_argument("--max-time", type=float, default=30.0)
    p.add_argument("--sample-time", type=float, default=2e-3,
                   help="batch calls shorter than this into one timed sample")
    opts = p.parse_args(argv)
    res = {"workload": opts.workload, "case": opts.case, "system": opts.system,
           "phase": opts.phase}
    try:
        measure(opts, res)
    except Exception as e:
        res.update(status="error", error=f"{type(e).__name__}: {e}",
                   traceback=traceback.format_exc())
    save(opts, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
