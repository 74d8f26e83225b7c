"""`python -m benchmarks`: run every (workload, case, system) in fresh worker processes,
print one line per measurement, then a Markdown table per workload; save JSON + Markdown.

Each measurement is a new `python -m benchmarks.worker` process with:
- OPENBLAS_NUM_THREADS=1, MKL_NUM_THREADS=1 and OMP_NUM_THREADS=1 (OMP left unset for the
  `*-parallel` systems), since 2 BLAS threads ran 10-50x slower on this busy 2-core machine;
- OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed (they slow current NumPy's OpenBLAS);
- a private, initially empty TRACEJIT_CACHE_DIR, NUMBA_CACHE_DIR and DRJIT_CACHE_DIR.
  Systems with a disk cache (tracejit, numba-hand, drjit) then run a second process on the
  same directories: its first call is the warm-cache first call.
For workloads with `lower_stats`, tracejit systems run one more process that times `lower()`
and sizes the generated source. A worker that exceeds its timeout is killed and its row
says how far it got ("did not finish").
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import report
from .workloads import GROUPS, NOT_YET, SYSTEMS, WORKLOADS

ROOT = Path(__file__).resolve().parent.parent
# W12 (W12A, W12B) is left out: compiling its unrolled loops takes tracejit and JAX minutes.
DEFAULT_WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "W10", "W11", "W16")

# (min reps, min seconds, max seconds, batch calls shorter than this) for the steady state
FULL_TIMING = (20, 2.0, 30.0, 2e-3)
QUICK_TIMING = (5, 0.2, 2.0, 1e-3)


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=(
        "Gradient benchmarks: tracejit against hand-written NumPy / Numba and peers."))
    p.add_argument("--workload", default=",".join(DEFAULT_WORKLOADS),
                   help="comma-separated workload ids (default: %(default)s)")
    p.add_argument("--systems", default=",".join(SYSTEMS),
                   help="comma-separated systems (default: all: %(default)s)")
    p.add_argument("--quick", action="store_true",
                   help="smaller sizes, fewer repetitions (15 minutes with JAX and Dr.Jit)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"),
                   help="directory for the .json and .md results (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds before a worker is killed (default 120 quick, 900 full; "
                        "W11 300/900, W12A/W12B 600/1800)")
    p.add_argument("--no-warm", action="store_true", help="skip the warm-cache processes")
    p.add_argument("--plot", action="store_true",
                   help="also write PNG figures (needs matplotlib: the `plot` extra) into "
                        "<run>-plots/ and embed them in the Markdown report")
    return p.parse_args(argv)


def child_env(system, cache_dir: Path) -> dict:
    env = dict(os.environ)
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "TRACEJIT_DISABLE_JIT"):
        env.pop(k, None)
    env.update(OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", OMP_NUM_THREADS="1")
    if system.parallel:
        del env["OMP_NUM_THREADS"]
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["TRACEJIT_CACHE_DIR"] = str(cache_dir / "tracejit")
    env["NUMBA_CACHE_DIR"] = str(cache_dir / "numba")
    env["DRJIT_CACHE_DIR"] = str(cache_dir / "drjit")
    return env


def run_worker(wl, case, system, phase, cache_dir: Path, timing, timeout) -> dict:
    result_file = cache_dir / f"result-{phase}.json"
    min_reps, min_time, max_time, sample_time = timing
    cmd = [sys.executable, "-m", "benchmarks.worker", "--workload", wl.id,
           "--case", case.label, "--system", system.name, "--phase", phase,
           "--result", str(result_file), "--min-reps", str(min_reps),
           "--min-time", str(min_time), "--max-time", str(max_time),
           "--sample-time", str(sample_time)]
    base = {"workload": wl.id, "case": case.label, "system": system.name, "phase": phase}
    if "tracejit" in system.modules:
        base["tracejit_git"] = tracejit_state()
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=child_env(system, cache_dir),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        partial = {}
        if result_file.exists():  # the worker rewrites it at every stage
            try:
                partial = json.loads(result_file.read_text())
            except ValueError:
                pass
        return {**partial, **base, "status": "timeout", "timeout_s": timeout,
                "error": f"killed after {timeout:.0f} s"}
    wall = time.perf_counter() - t
    if proc.returncode != 0 or not result_file.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return {**base, "status": "crashed", "process_wall_s": wall,
                "error": f"worker exited with {proc.returncode}: " + " | ".join(tail)}
    res = json.loads(result_file.read_text())
    res["process_wall_s"] = wall
    if proc.stderr.strip():
        res["stderr_tail"] = proc.stderr.strip().splitlines()[-5:]
    return res


def tracejit_state() -> str | None:
    """The commit plus a hash of any uncommitted tracejit/ diff: recorded at the start, the
    end and for every tracejit row, since the compiler may be edited while a long run goes."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                             capture_output=True, text=True).stdout.strip()
        diff = subprocess.run(["git", "diff", "HEAD", "--", "tracejit"], cwd=ROOT,
                              capture_output=True, text=True).stdout
    except OSError:
        return None
    return rev + (f" + uncommitted tracejit/ diff sha256:"
                  f"{hashlib.sha256(diff.encode()).hexdigest()[:10]}" if diff else "")


def machine_info() -> dict:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {"python": platform.python_version()}
    for dist in ("numpy", "numba", "llvmlite", "scipy", "tracejit", "threadpoolctl", "jax",
                 "jaxlib", "torch", "autograd", "drjit"):
        try:  # metadata only: the runner stays small and never imports numba or peers
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    state = tracejit_state()
    if state is not None:
        versions["tracejit_git"] = state
    return {"nproc": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)), "cpu": cpu,
            "platform": platform.platform(), "versions": versions,
            "parent_env": {k: os.environ.get(k) for k in (
                "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS",
                "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}}


def installed(system) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in system.modules)


def eta_text(elapsed: float, done: int, total: int) -> str:
    """Time left, assuming the remaining processes take as long as the finished ones did on
    average."""
    if done <= 0 or done >= total:
        return ""
    left = elapsed / done * (total - done)
    return f"~{left / 60:.0f} min left" if left >= 90 else f"~{left:.0f} s left"


def progress_line(i: int, total: int, r: dict, eta: str = "") -> str:
    head = f"[{i:>2}/{total}] {r['workload']} {r['case']:<19} {r['system']:<20} {r['phase']:<4}"
    if eta:
        head = f"{head} ({eta})"
    if r["status"] != "ok":
        stage = f" in {r['stage']}" if r.get("stage") else ""
        return f"{head} {r['status'].upper()}{stage}: {r.get('error', '')}"
    if r["phase"] == "lower":
        return (f"{head} lower() {r['lower_s']:.3g} s, generated source "
                f"{r['source_chars']:,} chars in {r.get('source_modules') or '?'} module(s), "
                f"load {r['loadavg_start'][0]:.1f}")
    unit_us = WORKLOADS[r["workload"]].unit == "us"
    parts = [f"first call {r['first_call_s']:.3g} s"]
    if r["phase"] == "cold":
        med = r["median_s"] * (1e6 if unit_us else 1e3)
        parts.append(f"median {med:.4g} {'us' if unit_us else 'ms'} ({r['reps']} x{r['batch']})")
        parts.append(f"cpu/wall {r['cpu_per_wall']:.2f}, other {r['other_cores_busy']:.2f}")
        parts.append(f"peak RSS {r['peak_rss_mb']:.0f} MB")
        if r.get("call_mb") is not None:
            parts.append(f"call {r['call_mb']:.1f} MB")
    err = r.get("max_rel_err")
    verdict = "ok" if r.get("correct") else "WRONG"
    parts.append(f"err {err:.2g} {verdict}" if err is not None else verdict)
    parts.append(f"load {r['loadavg_start'][0]:.1f}")
    return f"{head} " + ", ".join(parts)


def default_timeout(wl, quick: bool) -> float:
    if wl.timeout is not None:
        return wl.timeout[0 if quick else 1]
    return 120 if quick else 900


def lowers(wl, system) -> bool:
    """Does this row get a `lower` process (lower() time and generated source size)?"""
    return wl.lower_stats and "tracejit" in system.modules


def main(argv=None) -> int:
    opts = parse_args(argv)
    timing = QUICK_TIMING if opts.quick else FULL_TIMING
    requested = [w.strip().upper() for w in opts.workload.split(",") if w.strip()]
    requested = [x for w in requested for x in GROUPS.get(w, (w,))]
    names = [s.strip() for s in opts.systems.split(",") if s.strip()]
    unknown = [w for w in requested if w not in WORKLOADS and w not in NOT_YET] + \
        [s for s in names if s not in SYSTEMS]
    if unknown:
        print(f"unknown workload/system: {', '.join(unknown)}; workloads: "
              f"{', '.join(WORKLOADS)}; systems: {', '.join(SYSTEMS)}", file=sys.stderr)
        return 2

    notes = [f"{w} not run: {why}, which tracejit does not have yet."
             for w, why in NOT_YET.items()]
    systems = []
    for name in names:
        s = SYSTEMS[name]
        if s.peer and not installed(s):
            notes.append(f"{name}: not installed, skipped.")
        else:
            systems.append(s)
    chosen = [WORKLOADS[w] for w in requested if w in WORKLOADS]
    notes += [f"{wl.id}: {s.name} not run: {wl.unsupported[s.name]}."
              for wl in chosen for s in systems if s.name in wl.unsupported]
    notes += [f"{s.name} runs only {', '.join(s.workloads)} (its adapter covers no more)."
              for s in systems if s.workloads is not None
              and any(wl.id not in s.workloads for wl in chosen)]
    for n in notes:
        print(n)

    plan = [(wl, case, s) for wl in chosen
            for case in (wl.quick_cases if opts.quick else wl.cases)
            for s in systems if s.applies_to(wl, case)]
    total = len(plan) + (0 if opts.no_warm else sum(s.disk_cache for _, _, s in plan)) + \
        sum(lowers(wl, s) for wl, _, s in plan)
    meta = {"started": datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"), "mode": "quick" if opts.quick else "full",
        "loadavg_start": os.getloadavg(), "machine": machine_info(),
        "timing": dict(zip(("min_reps", "min_time_s", "max_time_s", "batch_below_s"), timing)),
        "child_env": {"OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                      "OMP_NUM_THREADS": "1 (unset for *-parallel systems)",
                      "OPENBLAS_CORETYPE": "unset", "OPENBLAS_L2_SIZE": "unset"},
        "notes": notes}
    print(f"{len(plan)} measurements ({total} processes), {meta['mode']} mode; "
          f"{meta['machine']['nproc']} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)

    cache_root = Path(tempfile.mkdtemp(prefix="tracejit-bench-"))
    results, done = [], 0
    started = time.monotonic()

    def show(r: dict) -> None:
        print(progress_line(done, total, r, eta_text(time.monotonic() - started, done, total)),
              flush=True)
    try:
        for k, (wl, case, system) in enumerate(plan):
            cache_dir = cache_root / f"{k:03d}-{system.name}"
            cache_dir.mkdir()
            timeout = opts.timeout or default_timeout(wl, opts.quick)
            res = run_worker(wl, case, system, "cold", cache_dir, timing, timeout)
            done += 1
            show(res)
            if system.disk_cache and not opts.no_warm:
                if res["status"] == "timeout" and "first_call_s" not in res:
                    # nothing reached the disk cache: a second process would time out too
                    warm = {**res, "phase": "warm", "status": "skipped",
                            "error": "the cold first call did not finish", "stage": None}
                else:
                    warm = run_worker(wl, case, system, "warm", cache_dir, timing, timeout)
                done += 1
                show(warm)
                res["warm"] = warm
            if lowers(wl, system):
                low = run_worker(wl, case, system, "lower", cache_dir, timing, timeout)
                done += 1
                show(low)
                res["lower"] = low
            results.append(res)
    finally:
        shutil.rmtree(cache_root, ignore_errors=True)
    meta["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds")
    meta["loadavg_end"] = os.getloadavg()
    start_state, end_state = meta["machine"]["versions"].get("tracejit_git"), tracejit_state()
    if end_state != start_state:
        meta["notes"].append(f"tracejit changed during the run: {start_state} at the start, "
                             f"{end_state} at the end; each tracejit row's state is "
                             "`tracejit_git` in the JSON.")

    markdown = report.render(meta, results)
    print()
    print(markdown)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / ("bench-" + time.strftime("%Y%m%d-%H%M%S") + ("-quick" if opts.quick else ""))
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "results": results},
                                                    indent=1, default=str))
    stem.with_suffix(".md").write_text(markdown)
    print(f"wrote {stem}.json and {stem}.md")
    if opts.plot:
        for fig in report.write_plots(stem.with_suffix(".json")):
            print(f"wrote {fig}")
    return 0
