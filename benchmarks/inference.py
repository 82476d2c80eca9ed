"""Inference speed: xrnn's forward without a cache against torch.nn, ONNX Runtime and the matmul floor.

::

    python benchmarks/inference.py                 # the cases of docs/benchmarks.md, 1 and 2 threads
    python benchmarks/inference.py --quick         # the same table, fewer rounds (under 2 minutes)
    python benchmarks/inference.py --json out.json

For each case (a one-layer LSTM or GRU, float32, a whole sequence from a zero state) and
thread count, in one process and alternating round by round (medians):

- ``xrnn``: ``layer.forward(x, need_cache=False)``, NumPy arrays, the Numba backend; and
  ``xrnn threaded pointwise``, the same with the pointwise step on all of Numba's threads
  from 32 rows (``infer_ops.PARALLEL_ROWS``; the same as ``xrnn`` on 1 thread or below 32 rows);
- ``torch``: the matching ``torch.nn`` module on the same weights, under
  ``torch.inference_mode()``; on the CPU its LSTM is oneDNN's fused LSTM primitive;
- ``torch_native``: the same module with oneDNN turned off
  (``torch.backends.mkldnn.flags(enabled=False)``): torch's own loop of matmuls and
  pointwise kernels, what xrnn's loop is;
- ``ort``: ONNX Runtime on the graph of :func:`xrnn.export_onnx` (its ``LSTM``/``GRU``
  operators), one session per thread count (``intra_op_num_threads``);
- ``floor``: the very matmuls of the forward pass in NumPy and nothing else, the hoisted
  projection ``X @ W_ih^T`` and ``T`` products ``h @ W_hh^T`` of the step's shape.

Threads: NumPy's BLAS through threadpoolctl, Numba's pool (``numba.set_num_threads``),
``torch.set_num_threads`` and the ONNX Runtime session. Before timing, every contender's
output is checked equal to xrnn's (float32 tolerance).

Two more tables: the per-call overhead (a call at T=1, N=1, I=H=8, where the work is
nothing: with ``need_cache=False`` and with the cache), and the recurrent step's matmul
at small batches, NumPy's BLAS ``gemm`` against a compiled loop of multiply-adds (the
measurement behind the choice of BLAS in ``xrnn/backends/numba/inference.py``).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numba
import numpy as np
import onnxruntime as ort
import torch
from settle import repeats, sample
from threadpoolctl import threadpool_limits

import xrnn
from xrnn.backends.numba import infer_ops

CASES = [  # (cell, T, N, I, H)
    ("lstm", 100, 64, 256, 256),
    ("lstm", 100, 64, 512, 512),
    ("lstm", 100, 8, 32, 64),
    ("gru", 50, 32, 256, 256),
    ("gru", 100, 8, 32, 64),
]
LAYERS = {"lstm": (xrnn.LSTM, torch.nn.LSTM), "gru": (xrnn.GRU, torch.nn.GRU)}
GATES = {"lstm": 4, "gru": 3}


def alternate(methods: dict[str, Callable[[], Any]], rounds: int, min_sample: float) -> dict[str, float]:
    """Median seconds per call of each method, interleaved round by round (each first warmed up)."""
    for fn in methods.values():
        fn()
    repeat = {name: repeats(fn, min_sample) for name, fn in methods.items()}
    samples: dict[str, list[float]] = {name: [] for name in methods}
    names = list(methods)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            samples[name].append(sample(methods[name], repeat[name]))
    return {name: float(np.median(v)) for name, v in samples.items()}


def contenders(cell: str, t: int, n: int, i: int, h: int, threads: list[int]) -> dict[str, Any]:
    """The layer, its torch twin, its ONNX Runtime sessions (by threads), the floor and the input."""
    ours, theirs = LAYERS[cell]
    layer = ours(i, h, seed=0).eval()
    module = theirs(i, h)
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in layer.state_dict().items()})
    module.eval()
    x = np.random.default_rng(1).standard_normal((t, n, i)).astype(np.float32)
    graph = xrnn.export_onnx(layer, None).SerializeToString()
    sessions = {}
    for k in threads:
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = k, 1
        sessions[k] = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    p = layer.params
    w_ih_t, w_hh_t = np.ascontiguousarray(p["weight_ih_l0"].T), np.ascontiguousarray(p["weight_hh_l0"].T)
    flat, state = x.reshape(t * n, i), np.zeros((n, h), np.float32)
    gx, gh = np.empty((t * n, GATES[cell] * h), np.float32), np.empty((n, GATES[cell] * h), np.float32)

    def floor() -> None:
        np.matmul(flat, w_ih_t, out=gx)
        for _ in range(t):
            np.matmul(state, w_hh_t, out=gh)

    xt = torch.from_numpy(x)

    def run_torch() -> Any:
        with torch.inference_mode():
            return module(xt)[0]

    def run_torch_native() -> Any:
        with torch.inference_mode(), torch.backends.mkldnn.flags(enabled=False):
            return module(xt)[0]

    return {
        "layer": layer,
        "torch": run_torch,
        "torch_native": run_torch_native,
        "sessions": sessions,
        "floor": floor,
        "x": x,
    }


def threaded(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` with the pointwise step of the inference loops on all of Numba's threads from 32 rows."""

    def run() -> Any:
        infer_ops.PARALLEL_ROWS = 32
        try:
            return fn()
        finally:
            infer_ops.PARALLEL_ROWS = None

    return run


def run_case(
    case: tuple[Any, ...], threads: list[int], rounds: int, min_sample: float
) -> list[dict[str, Any]]:
    """Rows of the main table for one case, one per thread count."""
    cell, t, n, i, h = case
    c = contenders(cell, t, n, i, h, threads)
    layer, x = c["layer"], c["x"]
    y = layer.forward(x, need_cache=False)[0]
    names = [node.name for node in c["sessions"][threads[0]].get_inputs()]
    feed = {names[0]: x}
    for session in c["sessions"].values():  # every contender computes the same y first
        np.testing.assert_allclose(session.run(["y"], feed)[0], y, rtol=1e-4, atol=1e-5)
    for name in ("torch", "torch_native"):
        np.testing.assert_allclose(c[name]().numpy(), y, rtol=1e-4, atol=1e-5)
    rows = []
    for k in threads:
        session = c["sessions"][k]
        methods = {
            "xrnn": lambda: layer.forward(x, need_cache=False),
            "torch": c["torch"],
            "torch_native": c["torch_native"],
            "ort": lambda session=session: session.run(["y"], feed),
            "floor": c["floor"],
        }
        if k > 1 and n >= 32:  # elsewhere the threaded pointwise step does not run: the same as xrnn
            methods["xrnn_threaded"] = threaded(lambda: layer.forward(x, need_cache=False))
        numba.set_num_threads(k)
        torch.set_num_threads(k)
        with threadpool_limits(limits=k):
            times = alternate(methods, rounds, min_sample)
        rows.append({"case": f"{cell.upper()} T={t} N={n} I={i} H={h}", "threads": k, **times})
    numba.set_num_threads(max(threads))
    return rows


def overhead(rounds: int) -> dict[str, float]:
    """Seconds per call where the work is nothing (T=1, N=1, I=H=8): the fixed cost of a call."""
    layer = xrnn.LSTM(8, 8, seed=0).eval()
    x = np.zeros((1, 1, 8), np.float32)
    with threadpool_limits(limits=1):
        return alternate(
            {
                "need_cache=False": lambda: layer.forward(x, need_cache=False),
                "need_cache=True": lambda: layer.forward(x),
            },
            rounds,
            0.05,
        )


def _small_gemm(h: Any, w_t: Any, out: Any) -> None:  # pragma: no cover (compiled)
    rows, inner = h.shape
    for b in range(rows):
        acc, h_b = out[b], h[b]
        acc[:] = 0
        for k in range(inner):
            hk, w_k = h_b[k], w_t[k]
            for j in range(w_t.shape[1]):
                acc[j] += hk * w_k[j]


def small_matmul(rounds: int) -> list[dict[str, Any]]:
    """The step's matmul ``(N, H) @ (H, 4H)`` at small N: BLAS against a compiled loop, 1 thread."""
    from xrnn.backends.numba.loops import call_gemm, gemm_address

    compiled = numba.njit(fastmath={"contract"}, nogil=True)(_small_gemm)
    blas = numba.njit(nogil=True)(lambda g, h, w, out: call_gemm(g, h, w, 0.0, out))
    address = gemm_address(np.float32)
    rows = []
    for n, hidden in ((1, 64), (4, 64), (8, 64), (16, 64), (8, 128), (16, 128)):
        rng = np.random.default_rng(0)
        h = rng.standard_normal((n, hidden)).astype(np.float32)
        w = rng.standard_normal((hidden, 4 * hidden)).astype(np.float32)
        out = np.empty((n, 4 * hidden), np.float32)
        with threadpool_limits(limits=1):
            times = alternate(
                {
                    "blas": lambda h=h, w=w, out=out: blas(address, h, w, out),
                    "compiled": lambda h=h, w=w, out=out: compiled(h, w, out),
                },
                rounds,
                0.02,
            )
        rows.append({"N": n, "H": hidden, **times})
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """The main table in Markdown: milliseconds and ratios."""
    lines = [
        "| case | threads | xrnn ms | xrnn threaded pointwise ms | torch.nn ms | torch.nn without oneDNN ms "
        "| ORT ms | floor ms | xrnn/torch | xrnn/ORT | xrnn/floor | torch/floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    keys = ("xrnn", "xrnn_threaded", "torch", "torch_native", "ort", "floor")
    for r in rows:
        ms = [r.get(k, r["xrnn"]) * 1e3 for k in keys]
        same = "xrnn_threaded" not in r
        lines.append(
            f"| {r['case']} | {r['threads']} | {ms[0]:.3g} | {'(same)' if same else f'{ms[1]:.3g}'} "
            f"| {ms[2]:.3g} | {ms[3]:.3g} | {ms[4]:.3g} | {ms[5]:.3g} "
            f"| {ms[0] / ms[2]:.2f} | {ms[0] / ms[4]:.2f} | {ms[0] / ms[5]:.2f} | {ms[2] / ms[5]:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and shorter samples")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--rounds", type=int, help="samples per method (default 7, quick 2)")
    parser.add_argument("--cases", help="comma-separated indices into CASES (default all)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 7)
    min_sample = 0.0 if args.quick else 0.1
    threads = [int(k) for k in args.threads.split(",")]
    cases = CASES if args.cases is None else [CASES[int(j)] for j in args.cases.split(",")]
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    rows = []
    for case in cases:
        rows += run_case(case, threads, rounds, min_sample)
    print(table(rows))
    calls = overhead(rounds)
    print("\nper-call cost, LSTM T=1 N=1 I=H=8, 1 thread:")
    for name, seconds in calls.items():
        print(f"  forward({name}): {seconds * 1e6:.1f} us")
    matmul = small_matmul(rounds)
    print("\nstep matmul (N, H) @ (H, 4H), float32, 1 thread, us: BLAS gemm | compiled loop")
    for r in matmul:
        print(f"  N={r['N']:>2} H={r['H']:>3}: {r['blas'] * 1e6:7.2f} | {r['compiled'] * 1e6:7.2f}")
    load = os.getloadavg()
    print(f"load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    result = {"rows": rows, "overhead": calls, "small_matmul": matmul, "load_end": load}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
