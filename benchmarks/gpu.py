"""xrnn on a GPU: its fused CUDA kernels against its generic CuPy path and ``torch.nn`` with cuDNN.

One training step (forward and backward, ``dx`` and every weight gradient) per case, float32,
each method timed after a warm-up (compilation), the methods interleaved round by round,
medians printed as a table headed by the GPU's name::

    python benchmarks/gpu.py                    # on a GPU machine with CuPy, numba-cuda, torch
    python benchmarks/gpu.py --json out.json    # ... and the results as JSON
    python benchmarks/gpu.py --dry              # anywhere: NumPy and torch on the CPU, tiny shapes

Methods: ``xrnn`` (CuPy on :class:`xrnn.backends.cuda.CudaOps`: per step one cuBLAS matmul
and one fused kernel), ``generic`` (the same layer with ``XRNN_CUDA=0``: the generic loop, a
dozen CuPy kernels per step), ``cudnn`` (``torch.nn.LSTM/GRU`` on the same GPU). It also
measures what one step costs at the smallest shape (``N = H = 1``, so nothing but launches):
one cuBLAS matmul, and one whole step of the fused path, so that the launch overhead per step
can be read off. ``--dry`` runs the same code on the CPU (NumPy on Numba's fast path, its
generic path with ``XRNN_NUMBA=0``, torch on the CPU), to keep it working where no GPU is.

Targets (the issue that brought the kernels): a training step within 2x of cuDNN for the
LSTM at H=1024, N=64, and the fused path at least 3x faster than the generic one at H=512,
N=64.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import xrnn

# (cell, T, N, I, H)
CASES = [
    ("lstm", 25, 16, 512, 512),
    ("lstm", 25, 64, 512, 512),
    ("lstm", 25, 16, 1024, 1024),
    ("lstm", 25, 64, 1024, 1024),
    ("lstm", 100, 64, 512, 512),
    ("gru", 25, 64, 512, 512),
]
DRY_CASES = [("lstm", 5, 3, 4, 6), ("gru", 5, 3, 4, 6)]
LAYERS = {"lstm": (xrnn.LSTM, torch.nn.LSTM), "gru": (xrnn.GRU, torch.nn.GRU)}


class Device:
    """Where the benchmark runs: array namespace, torch device, synchronisation, switch of the fast path."""

    def __init__(self, dry: bool) -> None:
        self.dry = dry
        self.switch = "XRNN_NUMBA" if dry else "XRNN_CUDA"
        if dry:
            self.xp, self.torch_device = "numpy", "cpu"
            self.name = f"CPU (dry run: NumPy and torch on the CPU, {os.cpu_count()} logical CPUs)"
            self.sync: Callable[[], None] = lambda: None
            return
        import cupy

        self.cupy = cupy
        self.xp, self.torch_device = "cupy", "cuda"
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        self.name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])

        def sync() -> None:
            cupy.cuda.get_current_stream().synchronize()
            torch.cuda.synchronize()

        self.sync = sync

    def tensor(self, a: Any) -> Any:
        """Array ``a`` as a torch tensor on the same device (zero-copy on the GPU)."""
        return torch.from_numpy(np.array(a)) if self.dry else torch.from_dlpack(a)

    def versions(self) -> str:
        """Library versions, for the table's heading."""
        parts = [f"torch {torch.__version__}"]
        if not self.dry:
            import numba_cuda

            parts += [f"CuPy {self.cupy.__version__}", f"numba-cuda {numba_cuda.__version__}"]
            parts.append(f"cuDNN {torch.backends.cudnn.version()}")
        return ", ".join(parts)

    def fast(self, on: bool, fn: Callable[[], Any]) -> Callable[[], Any]:
        """``fn`` on xrnn's fast path (``on``) or forced onto its generic path."""

        def run() -> Any:
            os.environ[self.switch] = "1" if on else "0"
            try:
                return fn()
            finally:
                os.environ.pop(self.switch, None)

        return run


def timed(methods: dict[str, Callable[[], Any]], rounds: int, sync: Callable[[], None]) -> dict[str, float]:
    """Median seconds per call of each method (after two warm-up calls), interleaved round by round."""
    for fn in methods.values():
        fn()
        fn()
    sync()
    samples: dict[str, list[float]] = {name: [] for name in methods}
    names = list(methods)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            sync()
            t0 = time.perf_counter()
            methods[name]()
            sync()
            samples[name].append(time.perf_counter() - t0)
    return {name: statistics.median(v) for name, v in samples.items()}


def run_case(dev: Device, cell: str, t: int, n: int, i: int, h: int, rounds: int) -> dict[str, Any]:
    """One case: seconds per training step of each method, and how far xrnn is from torch."""
    ours, theirs = LAYERS[cell]
    layer = ours(i, h, xp=dev.xp, dtype="float32", seed=0)
    xp = layer.xp
    rng = np.random.default_rng(0)
    x_host = rng.standard_normal((t, n, i)).astype(np.float32)
    dy_host = rng.standard_normal((t, n, h)).astype(np.float32)
    x, dy = xp.asarray(x_host), xp.asarray(dy_host)
    module = theirs(i, h).to(dev.torch_device)
    module.load_state_dict({k: dev.tensor(v) for k, v in layer.state_dict().items()})
    x_t = torch.tensor(x_host, device=dev.torch_device, requires_grad=True)
    dy_t = torch.tensor(dy_host, device=dev.torch_device)

    def xrnn_step() -> Any:
        y, _, cache = layer.forward(x)
        return y, layer.backward(cache, dy)

    def torch_step() -> Any:
        module.zero_grad(set_to_none=True)
        x_t.grad = None
        y, _ = module(x_t)
        y.backward(dy_t)
        return y

    (y, (dx, _, _)), y_t = dev.fast(True, xrnn_step)(), torch_step()
    y_t = y_t.detach()
    scale = float(torch.max(torch.abs(y_t)))
    err_y = float(torch.max(torch.abs(dev.tensor(y) - y_t))) / scale
    dx_t = x_t.grad
    err_dx = float(torch.max(torch.abs(dev.tensor(dx) - dx_t))) / float(torch.max(torch.abs(dx_t)))
    seconds = timed(
        {"xrnn": dev.fast(True, xrnn_step), "generic": dev.fast(False, xrnn_step), "cudnn": torch_step},
        rounds,
        dev.sync,
    )
    return {"cell": cell, "T": t, "N": n, "I": i, "H": h, "seconds": seconds, "rel_err": max(err_y, err_dx)}


def step_overhead(dev: Device, rounds: int) -> dict[str, float]:
    """Microseconds per step at ``N = H = 1``: one matmul alone, and one forward step (matmul + kernel)."""
    t_steps = 200
    layer = xrnn.LSTM(1, 1, xp=dev.xp, dtype="float32", seed=0)
    xp = layer.xp
    x = xp.ones((t_steps, 1, 1), dtype=xp.float32)
    h, w = xp.ones((1, 1), dtype=xp.float32), xp.ones((1, 4), dtype=xp.float32)
    out = xp.empty((1, 4), dtype=xp.float32)
    raw = dev.cupy if not dev.dry else np

    def matmuls() -> None:
        for _ in range(t_steps):
            raw.matmul(h, w, out=out)

    def forward() -> None:
        layer.forward(x, need_cache=True)

    seconds = timed({"matmul": matmuls, "step": dev.fast(True, forward)}, rounds, dev.sync)
    return {name: s / t_steps * 1e6 for name, s in seconds.items()}


def table(dev: Device, results: list[dict[str, Any]], overhead: dict[str, float]) -> str:
    """The results as a Markdown table, headed by the device's name."""
    fast_name = "Numba" if dev.dry else "CUDA kernels"
    ref_name = "torch CPU" if dev.dry else "cuDNN"
    lines = [
        f"Device: {dev.name}",
        f"Versions: {dev.versions()}",
        "",
        "Training step (forward + backward, float32), median ms:",
        "",
        f"| case | xrnn {fast_name} | xrnn generic | {ref_name} | xrnn / {ref_name} | generic / xrnn "
        "| max rel. err |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        s = r["seconds"]
        lines.append(
            f"| {r['cell'].upper()} T={r['T']} N={r['N']} I={r['I']} H={r['H']} "
            f"| {s['xrnn'] * 1e3:.2f} | {s['generic'] * 1e3:.2f} | {s['cudnn'] * 1e3:.2f} "
            f"| {s['xrnn'] / s['cudnn']:.2f} | {s['generic'] / s['xrnn']:.2f} | {r['rel_err']:.1e} |"
        )
    lines += [
        "",
        f"Per step at N = H = 1 (launches only): one matmul {overhead['matmul']:.1f} us, "
        f"one forward step of the fused path {overhead['step']:.1f} us "
        f"(so about {overhead['step'] - overhead['matmul']:.1f} us for the kernel launch and the loop).",
    ]
    if not dev.dry:
        lines += ["", *targets(results)]
    return "\n".join(lines)


def targets(results: list[dict[str, Any]]) -> list[str]:
    """The issue's two targets, met or not."""
    out = []
    for r in results:
        s = r["seconds"]
        if (r["cell"], r["T"], r["N"], r["H"]) == ("lstm", 25, 64, 1024):
            ratio = s["xrnn"] / s["cudnn"]
            verdict = "met" if ratio <= 2 else "missed"
            out.append(f"Target: LSTM H=1024 N=64 within 2x of cuDNN: {ratio:.2f}x ({verdict})")
        if (r["cell"], r["T"], r["N"], r["H"]) == ("lstm", 25, 64, 512):
            ratio = s["generic"] / s["xrnn"]
            verdict = "met" if ratio >= 3 else "missed"
            out.append(f"Target: fused path 3x the generic one at H=512 N=64: {ratio:.2f}x ({verdict})")
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry", action="store_true", help="on the CPU, tiny shapes (no GPU needed)")
    parser.add_argument("--rounds", type=int, help="timed samples per method (default 5, dry 1)")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    args = parser.parse_args(argv)
    dev = Device(args.dry)
    rounds = args.rounds or (1 if args.dry else 5)
    results = [run_case(dev, *case, rounds) for case in (DRY_CASES if args.dry else CASES)]
    overhead = step_overhead(dev, rounds)
    print(table(dev, results, overhead), flush=True)
    doc = {
        "device": dev.name,
        "versions": dev.versions(),
        "dry": args.dry,
        "cases": results,
        "step_us": overhead,
    }
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return doc


if __name__ == "__main__":
    main()
