"""The benchmark suite runs end to end on tiny shapes (no timing is asserted)."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from conftest import BACKENDS

pytest.importorskip("torch")
if "numpy" not in BACKENDS:
    pytest.skip("the benchmarks run on NumPy; smoke-tested in the numpy leg", allow_module_level=True)
RUN = pathlib.Path(__file__).parents[1] / "benchmarks" / "run.py"


def test_quick_benchmark_writes_json_and_markdown(tmp_path):
    out, md = tmp_path / "results.json", tmp_path / "benchmarks.md"
    md.write_text("# Benchmarks\n\nNotes kept by hand.\n")
    cmd = [sys.executable, "-W", "error", str(RUN), "--quick", "--rounds", "1", "--threads", "1"]
    proc = subprocess.run([*cmd, "--out", str(out), "--markdown", str(md)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]

    doc = json.loads(out.read_text())
    assert doc["quick"] and doc["machine"]["threads"] == 1
    assert len(doc["cases"]) == 10 and len(doc["scaling"]["rows"]) == 3
    for name, res in doc["cases"].items():
        assert max(res["agreement_max_rel_err"].values()) < 1e-3, name
        for method in ("xrnn", "xrnn_generic", "straightforward"):
            assert res["methods"][method]["train"]["seconds"] > 0
    assert all(t["value"] is not None for t in doc["targets"])

    text = md.read_text()
    assert text.startswith("# Benchmarks\n\nNotes kept by hand.")
    assert text.count("<!-- results:begin threads=1") == 1 and "| LSTM T=4 N=3 I=5 H=6 |" in text


def test_interop_benchmark_runs_in_quick_mode(tmp_path):
    pytest.importorskip("jax")
    md = tmp_path / "benchmarks.md"
    md.write_text("# Benchmarks\n")
    script = pathlib.Path(__file__).parents[1] / "benchmarks" / "interop.py"
    cmd = [sys.executable, str(script), "--quick", "--threads", "1", "--markdown", str(md)]
    proc = subprocess.run([*cmd, "--out", str(tmp_path / "r.json")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "r.json").read_text())
    assert max(result["agreement_max_rel_err"].values()) < 1e-4
    text = md.read_text()
    assert "## Inside JAX and PyTorch programs" in text and "| xrnn JAX (jit, custom_vjp) |" in text


def test_gpu_benchmark_runs_dry_on_the_cpu(tmp_path):
    # ci/gpu.sh runs benchmarks/gpu.py on a GPU; --dry runs the same code on NumPy and torch's CPU
    out = tmp_path / "gpu.json"
    script = pathlib.Path(__file__).parents[1] / "benchmarks" / "gpu.py"
    cmd = [sys.executable, "-W", "error", str(script), "--dry", "--rounds", "1", "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("Device: CPU") and "| LSTM T=5 N=3 I=4 H=6 |" in proc.stdout
    doc = json.loads(out.read_text())
    assert doc["dry"] and [c["cell"] for c in doc["cases"]] == ["lstm", "gru"]
    for case in doc["cases"]:
        assert case["rel_err"] < 1e-4 and all(s > 0 for s in case["seconds"].values())
