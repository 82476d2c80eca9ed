"""Training-step times of defined cells, minGRU and minLSTM against the built-ins and torch.

::

    python benchmarks/custom_cells.py                 # prints a Markdown table
    python benchmarks/custom_cells.py --quick         # small sizes (a smoke run)

A training step is one forward with cache and one backward, float32 on the CPU; each case
is warmed up once, then the cases alternate for ``--rounds`` rounds and each reports its
median (steadier than the fastest of consecutive runs when the machine is shared). The
cases (the targets of the project's issue on custom cells):

- a defined cell (``xrnn.cells.define``) in :class:`xrnn.CellLayer` against the built-in
  layer of the same equations, and against a torch cell of the same equations in a
  Python loop over steps (autograd), at T=100, N=64, I=H=256;
- minGRU's parallel scan against its sequential loop, and against xrnn's GRU, at
  T=1024, N=16, I=H=256;
- with ``--scan-sizes``: the linear recurrence alone (forward and backward) as the generic
  Python loop and as the doubling scan, on NumPy and torch, over the sizes that
  ``parallel=None`` chooses between.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from settle import settle  # noqa: E402

import xrnn  # noqa: E402
from xrnn.cells import define  # noqa: E402


def layer_step(layer: Any, x: np.ndarray) -> Callable[[], Any]:
    """One training step of an xrnn layer on ``x``."""

    def run() -> Any:
        y, _, cache = layer.forward(x)
        return layer.backward(cache, y)

    return run


def torch_cifg_step(t_steps: int, n: int, size: int) -> Callable[[], Any]:
    """The coupled-input-forget-gate LSTM as a torch cell in a Python loop, autograd backward."""
    import torch

    lin_x, lin_h = torch.nn.Linear(size, 3 * size), torch.nn.Linear(size, 3 * size)
    x = torch.randn(t_steps, n, size)

    def run() -> Any:
        h = c = torch.zeros(n, size)
        gx, outs = lin_x(x), []
        for t in range(t_steps):
            f, g, o = (gx[t] + lin_h(h)).chunk(3, 1)
            f = torch.sigmoid(f)
            c = f * c + (1 - f) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        y = torch.stack(outs)
        y.backward(y.detach())

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--scan-sizes", action="store_true", help="the recurrence alone: loop or scan by size"
    )
    args = parser.parse_args()
    if args.scan_sizes:
        scan_sizes(args.rounds, quick=args.quick)
        return
    from define_cells import cifg, gru, lstm

    t1, n1, s1 = (10, 8, 16) if args.quick else (100, 64, 256)
    t2, n2, s2 = (64, 4, 16) if args.quick else (1024, 16, 256)
    rng = np.random.default_rng(0)
    lstm_cell = define("lstm_bench", ("i", "f", "g", "o"), ("h", "c"), lstm)
    cifg_cell = define("cifg_bench", ("f", "g", "o"), ("h", "c"), cifg)
    gru_cell = define("gru_bench", ("r", "z", "n"), ("h",), gru, separate=("n",))
    x1 = rng.standard_normal((t1, n1, s1)).astype("float32")
    x2 = rng.standard_normal((t2, n2, s2)).astype("float32")
    a, b = f"T={t1} N={n1} H={s1}", f"T={t2} N={n2} H={s2}"
    rows = [
        ("xrnn.LSTM (built-in, Numba)", a, layer_step(xrnn.LSTM(s1, s1, seed=0), x1)),
        ("CellLayer(LSTM via define)", a, layer_step(xrnn.CellLayer(lstm_cell, s1, s1), x1)),
        ("xrnn.GRU (built-in, Numba)", a, layer_step(xrnn.GRU(s1, s1, seed=0), x1)),
        ("CellLayer(GRU via define)", a, layer_step(xrnn.CellLayer(gru_cell, s1, s1), x1)),
        ("CellLayer(CIFG via define)", a, layer_step(xrnn.CellLayer(cifg_cell, s1, s1), x1)),
        ("torch CIFG cell, Python loop", a, torch_cifg_step(t1, n1, s1)),
        ("xrnn.GRU (built-in, Numba)", b, layer_step(xrnn.GRU(s2, s2, seed=0), x2)),
        ("MinGRU parallel scan", b, layer_step(xrnn.MinGRU(s2, s2, parallel=True), x2)),
        ("MinGRU sequential (Numba)", b, layer_step(xrnn.MinGRU(s2, s2, parallel=False), x2)),
        ("MinLSTM parallel scan", b, layer_step(xrnn.MinLSTM(s2, s2, parallel=True), x2)),
        ("MinLSTM sequential (Numba)", b, layer_step(xrnn.MinLSTM(s2, s2, parallel=False), x2)),
    ]
    for _, _, fn in rows:
        fn()  # warm-up: compilation, first allocations
    times: list[list[float]] = [[] for _ in rows]
    for _ in range(args.rounds):
        for k, (_, _, fn) in enumerate(rows):
            settle()
            start = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - start)
    load = os.getloadavg()[0]
    print(f"load average {load:.2f} on {os.cpu_count()} CPUs, float32, median of {args.rounds} rounds\n")
    print("| case | size | training step (ms) |\n|---|---|---|")
    for (name, size, _), ts in zip(rows, times):
        print(f"| {name} | {size} | {1e3 * float(np.median(ts)):.1f} |")


def _recurrence_ms(ops: Any, arrays: tuple[Any, ...], parallel: bool, rounds: int) -> float:
    """Median milliseconds of the recurrence forward and backward, after one warm-up run."""
    from xrnn.engine.linear_scan import recurrence, recurrence_backward

    a, b, h_prev, dh, h0 = arrays
    runs = []
    for _ in range(rounds + 1):
        start = time.perf_counter()
        recurrence(a, b, h0, parallel=parallel, ops=ops, xp=ops.xp)
        recurrence_backward(a, h_prev, dh, h0, parallel=parallel, ops=ops, xp=ops.xp)
        runs.append(time.perf_counter() - start)
    return 1e3 * float(np.median(runs[1:]))


def scan_sizes(rounds: int, *, quick: bool) -> None:
    """The recurrence alone, forward and backward: the generic loop against the doubling scan."""
    import torch
    from array_api_compat import numpy as np_xp
    from array_api_compat import torch as torch_xp

    from xrnn.engine.linear_scan import LinearOps

    torch.set_num_threads(1)
    spaces = [("NumPy", np_xp, lambda v: v), ("torch", torch_xp, torch.from_numpy)]
    widths = (16, 64, 256, 1024, 4096)
    sizes = [(16, 1, 16), (16, 4, 64)] if quick else [(t, 1, m) for t in (64, 1024) for m in widths]
    print(f"load average {os.getloadavg()[0]:.2f}, float32, median of {rounds} rounds\n")
    print("| namespace | T | N*H | loop (ms) | scan (ms) |\n|---|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for name, xp, conv in spaces:
        ops = LinearOps(xp)
        for t_steps, n, m in sizes:
            a, b, h_prev, dh = (conv(rng.uniform(0, 1, (t_steps, n, m)).astype("float32")) for _ in range(4))
            h0 = conv(np.zeros((n, m), "float32"))
            times = [
                _recurrence_ms(ops, (a, b, h_prev, dh, h0), parallel, rounds) for parallel in (False, True)
            ]
            print(f"| {name} | {t_steps} | {n * m} | {times[0]:.2f} | {times[1]:.2f} |")


if __name__ == "__main__":
    main()
