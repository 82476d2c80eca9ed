"""xrnn's benchmark suite: against torch.nn, the straightforward implementation and the matmul peak.

One command runs everything and writes the JSON results and the table of ``docs/benchmarks.md``::

    python benchmarks/run.py --out benchmarks/results.json --markdown docs/benchmarks.md
    python benchmarks/run.py --quick --out /tmp/r.json --markdown /tmp/b.md    # tiny shapes, seconds

For every case the suite times, alternating them round by round in one process and taking
medians: xrnn on its NumPy fast path (fused Numba kernels) and on its generic path
(``XRNN_NUMBA=0``), ``torch.nn.RNN/LSTM/GRU`` with autograd, the straightforward per-step
implementation of the classic formulation (``baseline.py``), and the very matmuls that xrnn
performs run back to back with nothing else. Each is timed for the forward pass (building
what backward needs: xrnn's cache, torch's autograd graph) and for a training step
(forward + backward). Work is counted as matmul FLOPs only: ``2*N*G*H*(I+H)`` per step,
layer and direction forward, three times that for a training step. Two ceilings are
measured in the same run: a large square matmul and a matmul of the recurrent step's own
shape ``(N, H) @ (H, G*H)``.

NumPy (OpenBLAS), Numba and torch all get the same thread count (``--threads``, default
all logical CPUs), set before NumPy is imported.
"""

from __future__ import annotations

import argparse
import os
import sys


def _threads_from_argv(argv: list[str]) -> int:
    for j, arg in enumerate(argv):
        if arg == "--threads" and j + 1 < len(argv):
            return int(argv[j + 1])
        if arg.startswith("--threads="):
            return int(arg.split("=", 1)[1])
    return os.cpu_count() or 1


THREADS = _threads_from_argv(sys.argv)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = str(THREADS)

import dataclasses  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import baseline  # noqa: E402
import numpy as np  # noqa: E402
import report  # noqa: E402
import torch  # noqa: E402

import xrnn  # noqa: E402
from xrnn import classic  # noqa: E402
from xrnn.backends import ops_for  # noqa: E402

torch.set_num_threads(THREADS)

GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1}
LAYERS = {
    "lstm": (xrnn.LSTM, torch.nn.LSTM),
    "gru": (xrnn.GRU, torch.nn.GRU),
    "rnn_tanh": (xrnn.RNN, torch.nn.RNN),
}


@dataclasses.dataclass(frozen=True)
class Case:
    """One benchmark: a layer (``kind="layer"``) or the classic API's LSTM (``kind="classic"``)."""

    name: str
    cell: str
    T: int
    N: int
    I: int  # noqa: E741
    H: int
    dtype: str = "float32"
    layers: int = 1
    bidirectional: bool = False
    kind: str = "layer"

    @property
    def label(self) -> str:
        extra = f", {self.layers} layers" if self.layers > 1 else ""
        extra += ", bidirectional" if self.bidirectional else ""
        api = "classic lstm_forward+backward" if self.kind == "classic" else self.cell.split("_")[0].upper()
        return f"{api} T={self.T} N={self.N} I={self.I} H={self.H}{extra}"

    def flops_forward(self) -> float:
        """Matmul FLOPs of the forward pass: ``2*N*G*H*(I_k+H)`` per step, layer and direction."""
        d = 2 if self.bidirectional else 1
        total = 0.0
        for k in range(self.layers):
            n_in = self.I if k == 0 else d * self.H
            total += d * 2 * self.N * GATES[self.cell] * self.H * (n_in + self.H) * self.T
        return total


CASES = [
    Case("lstm_small", "lstm", 100, 8, 32, 64),
    Case("gru_small", "gru", 100, 8, 32, 64),
    Case("lstm_256_t50", "lstm", 50, 32, 256, 256),
    Case("gru_256_t50", "gru", 50, 32, 256, 256),
    Case("rnn_256_t50", "rnn_tanh", 50, 32, 256, 256),
    Case("lstm_512", "lstm", 100, 64, 512, 512),
    Case("lstm_256", "lstm", 100, 64, 256, 256),
    Case("lstm_256_f64", "lstm", 100, 64, 256, 256, dtype="float64"),
    Case("bilstm2_256", "lstm", 50, 32, 256, 256, layers=2, bidirectional=True),
    Case("classic_lstm_256", "lstm", 100, 64, 256, 256, kind="classic"),
]
QUICK_CASES = [dataclasses.replace(c, T=4, N=3, I=5, H=6) for c in CASES]
SCALING = dict(cell="lstm", N=16, I=64, H=64, steps=(100, 1_000, 10_000))
QUICK_SCALING = dict(cell="lstm", N=2, I=3, H=4, steps=(10, 20, 40))

# (target name, case, metric, limit, "max" if the value must stay at or below the limit)
TARGETS = [
    ("LSTM train f32 vs torch, overhead-bound", "lstm_small", "train_ratio_torch", 1.5, "max"),
    ("LSTM train f32 vs torch, I=H=256", "lstm_256", "train_ratio_torch", 1.0, "max"),
    ("LSTM train f32 vs torch, I=H=512", "lstm_512", "train_ratio_torch", 1.0, "max"),
    ("LSTM train f64 vs torch, I=H=256", "lstm_256_f64", "train_ratio_torch", 0.7, "max"),
    ("GRU train f32 vs torch, I=H=256", "gru_256_t50", "train_ratio_torch", 0.8, "max"),
    ("RNN train f32 vs torch, I=H=256", "rnn_256_t50", "train_ratio_torch", 0.8, "max"),
    ("LSTM I=H=512: matmuls alone / xrnn train", "lstm_512", "matmul_fraction", 0.8, "min"),
    ("classic API: straightforward / xrnn", "classic_lstm_256", "train_speedup_straightforward", 1.5, "min"),
    ("time per step, T=100..10k: max/min - 1", "scaling", "time_spread", 0.10, "max"),
    ("cache bytes per step, T=100..10k: max/min - 1", "scaling", "cache_spread", 0.10, "max"),
]


# ---------------------------------------------------------------------------- timing


def _path(fast: bool, fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` run on xrnn's fast path or forced onto its generic path (``XRNN_NUMBA=0``)."""

    def run() -> Any:
        os.environ["XRNN_NUMBA"] = "1" if fast else "0"
        try:
            return fn()
        finally:
            os.environ.pop("XRNN_NUMBA", None)

    return run


# With more than one thread, OpenBLAS's idle workers keep spinning for about 0.1 s after
# each call and slow down whatever runs next on the other core (torch measured 13% slower
# right after xrnn at I=H=256 on 2 cores); each sample waits that long first.
PAUSE = 0.25 if THREADS > 1 else 0.0


def alternate(
    methods: dict[str, Callable[[], Any]],
    rounds: int,
    min_sample: float,
    best: dict[str, float] | None = None,
) -> dict[str, float]:
    """Median seconds per call of each method, the methods interleaved round by round.

    Each method is first run once (warm-up, compilation), then timed once more for a
    repeat count that makes one sample last at least ``min_sample`` seconds; each round
    then takes one sample of every method, starting each round at the next method so no
    method always goes first, each sample after a ``PAUSE``. ``best``, if given, receives
    each method's fastest sample.
    """
    repeat = {}
    for name, fn in methods.items():
        fn()
        t0 = time.perf_counter()
        fn()
        warm = time.perf_counter() - t0
        repeat[name] = max(1, math.ceil(min_sample / max(warm, 1e-9)))
    samples: dict[str, list[float]] = {name: [] for name in methods}
    names = list(methods)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            fn, n = methods[name], repeat[name]
            time.sleep(PAUSE)
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - t0) / n)
    if best is not None:
        best.update({name: float(np.min(v)) for name, v in samples.items()})
    return {name: float(np.median(v)) for name, v in samples.items()}


def square_ceiling(dtype: str, size: int, rounds: int) -> float:
    """GFLOP/s of a ``size x size`` matmul (median of ``rounds``)."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size)).astype(dtype) for _ in range(2))
    t = alternate({"square": lambda: a @ b}, rounds, 0.2)["square"]
    return 2 * size**3 / t / 1e9


# ---------------------------------------------------------------------- the matmuls alone


def xrnn_matmuls(case: Case, rng: np.random.Generator) -> tuple[list, list]:
    """The matmuls of xrnn's forward and backward for ``case``, with xrnn's shapes and layouts.

    Forward, per layer and direction: the hoisted ``X @ W_ih^T`` and T recurrent
    ``h @ W_hh^T`` (``W_hh^T`` a row-major copy, as in ``xrnn.engine.scan``). Backward: T
    ``dz @ W_hh``, then ``dG^T X``, ``dG^T H_prev`` (split at step 0 as in ``xrnn.engine.scan``) and
    ``dG @ W_ih``. They are timed writing into outputs allocated once (``_with_outputs``).
    """
    dt, n, h, t = case.dtype, case.N, case.H, case.T
    gh = GATES[case.cell] * h
    d = 2 if case.bidirectional else 1

    def r(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(dt)

    fwd, bwd = [], []
    for k in range(case.layers):
        n_in = case.I if k == 0 else d * h
        for _ in range(d):
            x, w_ih, w_hh = r(t * n, n_in), r(gh, n_in), r(gh, h)
            w_hh_t, h0, y, dgx = np.ascontiguousarray(w_hh.T), r(n, h), r(t * n, h), r(t * n, gh)
            dgh = r(t * n, gh) if case.cell == "gru" else dgx  # the GRU's dgh differs from its dgx
            fwd.append((x, w_ih.T))
            fwd += [(y[s * n : (s + 1) * n], w_hh_t) for s in range(t)]
            bwd += [(dgh[s * n : (s + 1) * n], w_hh) for s in range(t)]
            bwd += [(dgx.T, x), (dgh[:n].T, h0), (dgh[n:].T, y[:-n]), (dgx, w_ih)]
    return fwd, bwd


def _run_matmuls(triples: list) -> None:
    for a, b, out in triples:
        np.matmul(a, b, out=out)


def _with_outputs(pairs: list) -> list:
    """``(a, b, out)`` with ``out`` allocated once: the matmuls alone, not fresh memory for results."""
    return [(a, b, np.empty((a.shape[0], b.shape[1]), a.dtype)) for a, b in pairs]


# ----------------------------------------------------------------------- cache memory


def cache_bytes(obj: Any, exclude: set[int]) -> int:
    """Bytes of the distinct buffers of all NumPy arrays reachable through sequences.

    Sequences include tuples, lists and the fast path's lazily indexed step caches.
    """
    roots: dict[int, int] = {}

    def root(a: np.ndarray) -> np.ndarray:
        while isinstance(a.base, np.ndarray):
            a = a.base
        return a

    def walk(o: Any) -> None:
        if isinstance(o, np.ndarray):
            base = root(o)
            if id(base) not in exclude:
                roots[id(base)] = base.nbytes
        elif isinstance(o, Sequence) and not isinstance(o, (str, bytes)):
            for item in o:
                walk(item)

    walk(obj)
    return sum(roots.values())


# ------------------------------------------------------------------------------ cases


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-30))


def run_layer_case(case: Case, rounds: int, min_sample: float) -> dict[str, Any]:
    xcls, tcls = LAYERS[case.cell]
    tdtype = getattr(torch, case.dtype)
    torch.manual_seed(0)
    module = tcls(case.I, case.H, num_layers=case.layers, bidirectional=case.bidirectional, dtype=tdtype)
    sd = {k: v.detach().numpy() for k, v in module.state_dict().items()}
    layer = xcls.from_state_dict(sd, xp="numpy")
    straight = baseline.StraightforwardLayer(case.cell, sd, case.layers, case.bidirectional)
    rng = np.random.default_rng(0)
    d = 2 if case.bidirectional else 1
    x = rng.standard_normal((case.T, case.N, case.I)).astype(case.dtype)
    dy = rng.standard_normal((case.T, case.N, d * case.H)).astype(case.dtype)
    xt, dyt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dy)
    params = list(module.parameters())

    def xrnn_train() -> Any:
        _, _, cache = layer.forward(x)
        return layer.backward(cache, dy)

    def torch_train() -> Any:
        for p in params:
            p.grad = None
        xt.grad = None
        y, _ = module(xt)
        y.backward(dyt)
        return y

    def straight_train() -> Any:
        y, caches = straight.forward(x)
        return straight.backward(caches, dy)

    # the four implementations agree before any of them is timed
    y_t = torch_train()
    ref = {"y": y_t.detach().numpy(), "dx": xt.grad.numpy()} | {k: p.grad.numpy() for k, p in zip(sd, params)}
    agreement = {}
    for name, fast in (("xrnn", True), ("xrnn_generic", False)):
        y, _, cache = _path(fast, lambda: layer.forward(x))()
        dx, _, g = _path(fast, lambda cache=cache: layer.backward(cache, dy))()
        agreement[name] = max(_rel_err(v, ref[k]) for k, v in ({"y": y, "dx": dx} | g).items())
    y_s, caches = straight.forward(x)
    dx_s, g_s = straight.backward(caches, dy)
    agreement["straightforward"] = max(_rel_err(v, ref[k]) for k, v in ({"y": y_s, "dx": dx_s} | g_s).items())

    fwd_mm, bwd_mm = (_with_outputs(pairs) for pairs in xrnn_matmuls(case, rng))
    h_step = rng.standard_normal((case.N, case.H)).astype(case.dtype)
    w_step = np.ascontiguousarray(rng.standard_normal((case.H, GATES[case.cell] * case.H)).astype(case.dtype))
    methods = {
        "xrnn/fwd": _path(True, lambda: layer.forward(x)),
        "xrnn/train": _path(True, xrnn_train),
        "xrnn_generic/fwd": _path(False, lambda: layer.forward(x)),
        "xrnn_generic/train": _path(False, xrnn_train),
        "torch/fwd": lambda: module(xt),
        "torch/train": torch_train,
        "straightforward/fwd": lambda: straight.forward(x),
        "straightforward/train": straight_train,
        "matmuls/fwd": lambda: _run_matmuls(fwd_mm),
        "matmuls/train": lambda: _run_matmuls(fwd_mm + bwd_mm),
        "step_matmul": lambda: h_step @ w_step,
    }
    fastest: dict[str, float] = {}
    times = alternate(methods, rounds, min_sample, best=fastest)
    step_flops = 2 * case.N * case.H * GATES[case.cell] * case.H
    fastest.pop("step_matmul")
    return _summarise(
        case, times, fastest, agreement, step_ceiling=step_flops / times.pop("step_matmul") / 1e9
    )


def run_classic_case(case: Case, rounds: int, min_sample: float) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    n_x, n_a, m, t_x, dt = case.I, case.H, case.N, case.T, case.dtype
    bound = 1 / math.sqrt(n_a)
    p = {f"W{g}": rng.uniform(-bound, bound, (n_a, n_a + n_x)).astype(dt) for g in "fico"}
    p |= {f"b{g}": rng.uniform(-bound, bound, (n_a, 1)).astype(dt) for g in "fico"}
    p |= {"Wy": rng.uniform(-bound, bound, (n_a, n_a)).astype(dt), "by": np.zeros((n_a, 1), dt)}
    x = rng.standard_normal((n_x, m, t_x)).astype(dt)
    a0 = rng.standard_normal((n_a, m)).astype(dt)
    da = rng.standard_normal((n_a, m, t_x)).astype(dt)

    def train(api: Any) -> Any:
        _, _, _, caches = api.lstm_forward(x, a0, p)
        return api.lstm_backward(da, caches)

    ref = train(baseline)
    agreement = {}
    for name, fast in (("xrnn", True), ("xrnn_generic", False)):
        g = _path(fast, lambda: train(classic))()
        agreement[name] = max(_rel_err(g[k], ref[k]) for k in ref)
    agreement["straightforward"] = 0.0
    methods = {
        "xrnn/fwd": _path(True, lambda: classic.lstm_forward(x, a0, p)),
        "xrnn/train": _path(True, lambda: train(classic)),
        "xrnn_generic/fwd": _path(False, lambda: classic.lstm_forward(x, a0, p)),
        "xrnn_generic/train": _path(False, lambda: train(classic)),
        "straightforward/fwd": lambda: baseline.lstm_forward(x, a0, p),
        "straightforward/train": lambda: train(baseline),
    }
    fastest: dict[str, float] = {}
    times = alternate(methods, rounds, min_sample, best=fastest)
    return _summarise(case, times, fastest, agreement, step_ceiling=None)


def _summarise(
    case: Case,
    times: dict[str, float],
    fastest: dict[str, float],
    agreement: dict,
    step_ceiling: float | None,
) -> dict:
    """Per-method results from the median ``times``; the same ratios from the ``fastest`` samples too."""
    flops = {"fwd": case.flops_forward(), "train": 3 * case.flops_forward()}
    out: dict[str, Any] = {
        "case": dataclasses.asdict(case),
        "label": case.label,
        "agreement_max_rel_err": agreement,
        "flops": flops,
        "step_ceiling_gflops": step_ceiling,
        "methods": {},
    }
    for key, seconds in times.items():
        method, phase = key.split("/")
        out["methods"].setdefault(method, {})[phase] = {
            "seconds": seconds,
            "seconds_fastest": fastest[key],
            "us_per_step": seconds / case.T * 1e6,
            "gflops": flops[phase] / seconds / 1e9,
        }
    m = out["methods"]
    for phase in ("fwd", "train"):
        for suffix, stat in (("", "seconds"), ("_fastest", "seconds_fastest")):
            xrnn_s = m["xrnn"][phase][stat]
            if "torch" in m:
                out[f"{phase}_ratio_torch{suffix}"] = xrnn_s / m["torch"][phase][stat]
                out[f"{phase}_ratio_torch_generic{suffix}"] = (
                    m["xrnn_generic"][phase][stat] / m["torch"][phase][stat]
                )
            out[f"{phase}_speedup_straightforward{suffix}"] = m["straightforward"][phase][stat] / xrnn_s
            if "matmuls" in m:
                out[f"{phase}_matmul_fraction{suffix}"] = m["matmuls"][phase][stat] / xrnn_s
    out["matmul_fraction"] = out.get("train_matmul_fraction")
    out["matmul_fraction_fastest"] = out.get("train_matmul_fraction_fastest")
    return out


def run_scaling(cell: str, N: int, I: int, H: int, steps: tuple, rounds: int, min_sample: float) -> dict:  # noqa: E741
    """Training-step time and cache bytes of an LSTM layer for growing T, on both paths.

    The sequence lengths are interleaved round by round (their spread is the result), each
    path on its own.
    """
    layer = LAYERS[cell][0](I, H, seed=0, xp="numpy")
    params = {id(v) for v in layer.params.values()}
    rng = np.random.default_rng(0)
    data = {
        t: (
            rng.standard_normal((t, N, I)).astype("float32"),
            rng.standard_normal((t, N, H)).astype("float32"),
        )
        for t in steps
    }

    def train(t: int) -> Any:
        x, dy = data[t]
        _, _, cache = layer.forward(x)
        return layer.backward(cache, dy)

    rows: list[dict[str, Any]] = [{"T": t} for t in steps]
    for name, fast in (("xrnn", True), ("xrnn_generic", False)):
        methods = {str(t): _path(fast, lambda t=t: train(t)) for t in steps}
        fastest: dict[str, float] = {}
        times = alternate(methods, rounds, min_sample, best=fastest)
        for row in rows:
            t = row["T"]
            y, state, cache = _path(fast, lambda t=t: layer.forward(data[t][0]))()
            nbytes = cache_bytes((y, state, cache), params)
            row[name] = {
                "seconds": times[str(t)],
                "us_per_step": times[str(t)] / t * 1e6,
                "us_per_step_fastest": fastest[str(t)] / t * 1e6,
                "cache_bytes": nbytes,
                "cache_bytes_per_step": nbytes / t,
            }
            del y, state, cache

    def spread(values: list[float]) -> float:
        return max(values) / min(values) - 1

    return {
        "shape": dict(cell=cell, N=N, I=I, H=H),
        "rows": rows,
        # the fastest sample of each length: what a step costs without interference from
        # other processes, which on a shared machine moves medians of these short runs by 10%
        "time_spread": spread([r["xrnn"]["us_per_step_fastest"] for r in rows]),
        "cache_spread": spread([r["xrnn"]["cache_bytes_per_step"] for r in rows]),
        "time_spread_median": spread([r["xrnn"]["us_per_step"] for r in rows]),
        "time_spread_generic": spread([r["xrnn_generic"]["us_per_step_fastest"] for r in rows]),
        "cache_spread_generic": spread([r["xrnn_generic"]["cache_bytes_per_step"] for r in rows]),
    }


def evaluate_targets(results: dict[str, Any], scaling: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, case, metric, limit, kind in TARGETS:
        source = scaling if case == "scaling" else results.get(case)
        value = None if source is None else source.get(metric)
        fastest = None if source is None or case == "scaling" else source.get(f"{metric}_fastest")
        met = None if value is None else (value <= limit if kind == "max" else value >= limit)
        # how far off: > 0 is the fraction by which the value misses its limit
        miss = None if value is None else (value / limit - 1 if kind == "max" else limit / value - 1)
        if case == "scaling" and value is not None:
            miss = value - limit
        out.append(
            dict(
                name=name,
                case=case,
                metric=metric,
                limit=limit,
                kind=kind,
                value=value,
                met=met,
                miss=miss,
                value_fastest=fastest,
            )
        )
    return out


# ------------------------------------------------------------------------ the machine


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version()}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        models = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
        flags = set((re.findall(r"^flags\s*:\s*(.+)$", cpuinfo, re.M) or [""])[0].split())
        cores = {
            (p, c) for p, c in re.findall(r"physical id\s*:\s*(\d+).*?core id\s*:\s*(\d+)", cpuinfo, re.S)
        }
        info["cpu"] = models[0] if models else platform.processor()
        info["cpu_flags"] = sorted(
            flags & {"avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_bf16", "amx_tile"}
        )
        info["physical_cores"] = len(cores) or None
    except OSError:
        info["cpu"] = platform.processor()
    info["logical_cpus"] = os.cpu_count()
    try:
        mem = re.search(r"MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text())
        info["memory_gib"] = round(int(mem.group(1)) / 2**20, 1) if mem else None
    except OSError:
        pass
    blas = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
    info["numpy"] = np.__version__
    info["numpy_blas"] = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    info["torch"] = torch.__version__
    info["torch_threads"] = torch.get_num_threads()
    info["torch_mkldnn"] = bool(torch.backends.mkldnn.is_available())
    try:
        import numba

        info["numba"] = numba.__version__
    except ImportError:
        info["numba"] = None
    info["xrnn_ops"] = repr(ops_for(np, np.zeros(1, np.float32).dtype))
    info["threads"] = THREADS
    info["thread_env"] = {
        v: os.environ.get(v) for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS")
    }
    try:
        info["xrnn_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent
        ).stdout.strip()
    except OSError:
        info["xrnn_commit"] = None
    return info


# ------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="JSON results file")
    parser.add_argument("--markdown", type=Path, help="Markdown file whose results section is rewritten")
    parser.add_argument("--quick", action="store_true", help="tiny shapes and few rounds (smoke test)")
    parser.add_argument("--threads", type=int, default=THREADS, help="threads for NumPy, Numba and torch")
    parser.add_argument("--rounds", type=int, help="samples per method (default 7, quick 2)")
    parser.add_argument("--cases", help="comma-separated case names to run (default all, plus scaling)")
    args = parser.parse_args(argv)
    global PAUSE
    rounds = args.rounds or (2 if args.quick else 7)
    min_sample = 0.0 if args.quick else 0.05
    PAUSE = 0.0 if args.quick else PAUSE
    cases = QUICK_CASES if args.quick else CASES
    selected = set(args.cases.split(",")) if args.cases else None

    started = time.time()
    info = machine()
    info["load_average_start"] = os.getloadavg()
    size = 128 if args.quick else 2048
    ceilings = {dt: square_ceiling(dt, size, 3 if args.quick else 5) for dt in ("float32", "float64")}
    print(f"square {size}x{size} matmul: " + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in ceilings.items()))

    results: dict[str, Any] = {}
    for case in cases:
        if selected and case.name not in selected:
            continue
        run = run_classic_case if case.kind == "classic" else run_layer_case
        res = run(case, rounds, min_sample)
        res["square_ceiling_gflops"] = ceilings[case.dtype]
        results[case.name] = res
        print(report.one_line(case.name, res))
    scaling: dict[str, Any] = {}
    if not selected or "scaling" in selected:
        # samples of at least 0.5 s: at T=100 a call lasts a few ms, and the pause before each
        # sample (idle cores clocking down, BLAS threads asleep) would otherwise weigh on it alone
        scaling = run_scaling(
            **(QUICK_SCALING if args.quick else SCALING),
            rounds=rounds + 2,
            min_sample=min_sample if args.quick else 0.5,
        )
        print(
            f"scaling: time spread {scaling['time_spread']:.1%}, cache spread {scaling['cache_spread']:.1%}"
        )
    info["load_average_end"] = os.getloadavg()
    info["wall_seconds"] = round(time.time() - started, 1)

    doc = {
        "quick": args.quick,
        "rounds": rounds,
        "pause_seconds": PAUSE,
        "machine": info,
        "square_ceiling_gflops": ceilings,
        "square_size": size,
        "cases": results,
        "scaling": scaling,
        "targets": evaluate_targets(results, scaling),
    }
    for t in doc["targets"]:
        print(report.target_line(t))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    if args.markdown:
        report.write_markdown(args.markdown, doc)
    return doc


if __name__ == "__main__":
    main()
