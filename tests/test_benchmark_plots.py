"""Figures of a saved benchmark run (`python -m benchmarks.report --plot <run>.json`) and the
runner's time-left estimate."""

import json
import shutil
from pathlib import Path

import pytest

from benchmarks import report, runner

RUN = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / \
    "bench-20261127-031145.json"


def test_plots_of_a_saved_run(tmp_path):
    pytest.importorskip("matplotlib")
    run = tmp_path / RUN.name
    shutil.copy(RUN, run)
    assert report.main(["--plot", str(run)]) == 0
    data = json.loads(run.read_text())
    cases = {(r["workload"], r["case"]) for r in data["results"]
             if r.get("status") == "ok" and r.get("correct")}
    figs = sorted((tmp_path / (run.stem + "-plots")).glob("*.png"))
    assert len(figs) == len(cases) + 1
    for f in figs:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = run.with_suffix(".md").read_text()
    assert f"]({run.stem}-plots/{run.stem}-summary.png)" in md
    for wid, case in cases:
        assert report.figure_suffix(wid, case) + ".png)" in md, (wid, case)


def test_time_left():
    assert runner.eta_text(60.0, 2, 8) == "~3 min left"
    assert runner.eta_text(10.0, 5, 10) == "~10 s left"
    assert runner.eta_text(10.0, 10, 10) == ""
    r = {"workload": "W1", "case": "n=1e5", "system": "tracejit", "phase": "cold",
         "status": "error", "error": "boom"}
    assert "(~10 s left)" in runner.progress_line(5, 10, r, "~10 s left")
