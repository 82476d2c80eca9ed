"""The LayerNorm cells' speed target: a training step against xrnn's own LSTM and GRU, alternating.

::

    python benchmarks/layernorm.py [--rounds R] [--threads K] [--quick] [--json out.json]

One training step is forward (with the cache) and backward through one layer, ``(T, N, I)``
float32 input with a given upstream gradient of every output, T=100 N=64 I=H=256 (``--quick``:
tiny shapes, a smoke run). In one process and alternating round by round (medians of
``R`` rounds in a new order each, after one warm-up call each): ``xrnn.LSTM``, ``xrnn.LayerNormLSTM``,
``xrnn.GRU``, ``xrnn.LayerNormGRU`` on NumPy (the Numba compiled loops), forward and
backward timed apart, and haste's LayerNorm LSTM as a ``torch.jit.script`` loop (the one of
``benchmarks/cells.py``). Alternating puts the contenders under the same load, which on a
shared machine moves from one second to the next. xrnn's backward leaves out the input's
gradient (``need_dx=False``), as torch's autograd does for the loop's input, which
requires none. Targets (issue 27): the LayerNorm LSTM
within 1.3x of xrnn's LSTM and ahead of the torch loop.

Threads: ``--threads K`` sets NumPy's BLAS (threadpoolctl) and torch to ``K`` threads.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np
from settle import on_threads, settle, shuffled_rounds

LAYERS = ("LSTM", "LayerNormLSTM", "GRU", "LayerNormGRU")


def run(t_steps: int, n: int, size: int, rounds: int) -> dict[str, float]:
    """Median seconds of each contender's forward, backward and whole step."""
    import torch
    from cells import _torch_cells, torch_layernorm_lstm_step

    import xrnn

    rng = np.random.default_rng(0)
    x = rng.standard_normal((t_steps, n, size)).astype(np.float32)
    dy = rng.standard_normal((t_steps, n, size)).astype(np.float32)
    layers = {name: getattr(xrnn, name)(size, size, xp="numpy", seed=0) for name in LAYERS}

    def xrnn_step(layer: object) -> Callable[[], tuple[float, float]]:
        def step() -> tuple[float, float]:
            start = time.perf_counter()
            _, _, cache = layer.forward(x)  # type: ignore[attr-defined]
            middle = time.perf_counter()
            layer.backward(cache, dy, need_dx=False)  # type: ignore[attr-defined]
            return middle - start, time.perf_counter() - middle

        return step

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = _torch_cells()[-1]
    torch_step = torch_layernorm_lstm_step(torch, scripted, torch.from_numpy(x), torch.from_numpy(dy))

    def torch_timed() -> tuple[float, float]:
        start = time.perf_counter()
        torch_step()
        return 0.0, time.perf_counter() - start

    steps = {f"xrnn {name}": xrnn_step(layer) for name, layer in layers.items()}
    steps["torch.jit.script LayerNorm LSTM"] = torch_timed
    for step in steps.values():  # compile and warm up
        step()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in steps}
    for order in shuffled_rounds(steps, rounds):
        for name in order:
            settle()
            times[name].append(steps[name]())
    results: dict[str, float] = {}
    for name, pairs in times.items():
        results[f"{name} step"] = statistics.median(a + b for a, b in pairs)
        if name.startswith("xrnn"):
            results[f"{name} forward"] = statistics.median(a for a, _ in pairs)
            results[f"{name} backward"] = statistics.median(b for _, b in pairs)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny shapes (a smoke run)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="BLAS and torch threads")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    shape = (4, 3, 5) if args.quick else (100, 64, 256)
    load_before = os.getloadavg()[0]
    results = on_threads(args.threads, lambda: run(*shape, args.rounds))
    load = (load_before, os.getloadavg()[0])
    threads = args.threads or "default"
    print(
        f"T={shape[0]} N={shape[1]} I=H={shape[2]} float32, one training step, medians of {args.rounds} "
        f"alternating rounds, threads {threads}; load average {load[0]:.2f} before, {load[1]:.2f} after\n"
    )
    print("| implementation | forward s | backward s | step s | / xrnn LSTM (GRUs: / xrnn GRU) |")
    print("|---|---:|---:|---:|---:|")
    for name in [*(f"xrnn {layer}" for layer in LAYERS), "torch.jit.script LayerNorm LSTM"]:
        f, b = results.get(f"{name} forward"), results.get(f"{name} backward")
        cells = ("" if f is None else f"{f:.4f}", "" if b is None else f"{b:.4f}")
        step = results[f"{name} step"]
        base = results["xrnn GRU step" if name.endswith("GRU") else "xrnn LSTM step"]
        print(f"| {name} | {cells[0]} | {cells[1]} | {step:.4f} | {step / base:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"shape": shape, "threads": threads, "load": load, "seconds": results}, f, indent=1)


if __name__ == "__main__":
    main()
