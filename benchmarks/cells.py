"""The cells beyond torch.nn: one training step of xrnn's layer against the fastest torch code for it.

A training step is forward and backward through one layer, ``(T, N, I)`` float32 input,
with a given upstream gradient of every output. The torch implementations are the
fastest we could write on the CPU for each cell: ``torch.nn.GRU``/``torch.nn.LSTM`` where
torch has the cell, else a ``torch.jit.script`` loop with the input projection hoisted
out of it and autograd for the backward. xrnn runs on NumPy (the Numba compiled loop).
No step computes the gradient of the input: torch's autograd leaves it out for an input
that requires none, and xrnn's backward is called with ``need_dx=False``.

    python benchmarks/cells.py [--quick] [--rounds R] [--threads K] [--json out.json]

Prints a Markdown table (median seconds per step and the ratio to xrnn's own LSTM); the
timings are worth what the machine's load at the time allows (printed beside them).
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


def _torch_cells():  # noqa: ANN202  (torch is imported here, after the thread settings)
    import torch

    def gru_reset_before(gx: torch.Tensor, w_hh: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        hidden = h.shape[1]
        u_rz, u_n = w_hh[: 2 * hidden].t(), w_hh[2 * hidden :].t()
        outs = []
        for t in range(gx.shape[0]):
            g = gx[t]
            rz = torch.sigmoid(g[:, : 2 * hidden] + h @ u_rz)
            r, z = rz[:, :hidden], rz[:, hidden:]
            n = torch.tanh(g[:, 2 * hidden :] + (r * h) @ u_n)
            h = n + z * (h - n)
            outs.append(h)
        return torch.stack(outs)

    def lstm_peephole(
        gx: torch.Tensor, w_hh: torch.Tensor, p: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> torch.Tensor:
        hidden = h.shape[1]
        p_i, p_f, p_o = p[:hidden], p[hidden : 2 * hidden], p[2 * hidden :]
        w = w_hh.t()
        outs = []
        for t in range(gx.shape[0]):
            z = gx[t] + h @ w
            i = torch.sigmoid(z[:, :hidden] + p_i * c)
            f = torch.sigmoid(z[:, hidden : 2 * hidden] + p_f * c)
            c = f * c + i * torch.tanh(z[:, 2 * hidden : 3 * hidden])
            h = torch.sigmoid(z[:, 3 * hidden :] + p_o * c) * torch.tanh(c)
            outs.append(h)
        return torch.stack(outs)

    def lstm_zoneout(
        gx: torch.Tensor,
        w_hh: torch.Tensor,
        m_h: torch.Tensor,
        m_c: torch.Tensor,
        h: torch.Tensor,
        c: torch.Tensor,
    ) -> torch.Tensor:
        hidden = h.shape[1]
        w = w_hh.t()
        outs = []
        for t in range(gx.shape[0]):
            z = gx[t] + h @ w
            i, f = torch.sigmoid(z[:, :hidden]), torch.sigmoid(z[:, hidden : 2 * hidden])
            c_new = f * c + i * torch.tanh(z[:, 2 * hidden : 3 * hidden])
            h_new = torch.sigmoid(z[:, 3 * hidden :]) * torch.tanh(c_new)
            c = c_new + m_c[t] * (c - c_new)
            h = h_new + m_h[t] * (h - h_new)
            outs.append(h)
        return torch.stack(outs)

    def indrnn(gx: torch.Tensor, u: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        outs = []
        for t in range(gx.shape[0]):
            h = torch.relu(gx[t] + u * h)
            outs.append(h)
        return torch.stack(outs)

    def layernorm_lstm(
        wx: torch.Tensor,
        w_hh: torch.Tensor,
        ln: torch.Tensor,
        ln_c: torch.Tensor,
        h: torch.Tensor,
        c: torch.Tensor,
    ) -> torch.Tensor:  # haste's LayerNormLSTMScript, torch's gate order; wx = LN(W x) + b, hoisted
        hidden = h.shape[1]
        w = w_hh.t()
        outs = []
        for t in range(wx.shape[0]):
            z = wx[t] + torch.nn.functional.layer_norm(h @ w, (4 * hidden,), weight=ln[0], bias=ln[1])
            i, f = torch.sigmoid(z[:, :hidden]), torch.sigmoid(z[:, hidden : 2 * hidden])
            c = f * c + i * torch.tanh(z[:, 2 * hidden : 3 * hidden])
            c_n = torch.nn.functional.layer_norm(c, (hidden,), weight=ln_c[0], bias=ln_c[1])
            h = torch.sigmoid(z[:, 3 * hidden :]) * torch.tanh(c_n)
            outs.append(h)
        return torch.stack(outs)

    with warnings.catch_warnings():  # deprecated in torch 2.13, and still its fastest CPU loop
        warnings.simplefilter("ignore", DeprecationWarning)
        cells = (gru_reset_before, lstm_peephole, indrnn, lstm_zoneout, layernorm_lstm)
        scripted = (torch.jit.script(f) for f in cells)
        return torch, *scripted


def torch_layernorm_lstm_step(torch, layernorm_lstm, x_t, dy_t):  # noqa: ANN001, ANN201
    """One training step of haste's LayerNorm LSTM as a ``torch.jit.script`` loop (``LN(W x)`` hoisted).

    ``layernorm_lstm`` is the scripted loop of :func:`_torch_cells`; ``x_t``, ``dy_t`` ``(T, N, H)``
    float32 tensors (``I = H``). Returns the step, a function of no arguments.
    """
    size = x_t.shape[2]
    bound = 1 / np.sqrt(size)
    w_ih, w_hh, b = (
        torch.empty(*shape).uniform_(-bound, bound).requires_grad_()
        for shape in ((4 * size, size), (4 * size, size), (4 * size,))
    )
    ln = torch.stack([torch.ones(4 * size), torch.zeros(4 * size)]).requires_grad_()
    ln_c = torch.stack([torch.ones(size), torch.zeros(size)]).requires_grad_()
    zeros = torch.zeros(x_t.shape[1], size)

    def step() -> object:
        wx = torch.nn.functional.layer_norm(x_t @ w_ih.t(), (4 * size,), weight=ln[0], bias=ln[1]) + b
        (layernorm_lstm(wx, w_hh, ln, ln_c, zeros, zeros) * dy_t).sum().backward()
        return None

    return step


def _time(steps: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median seconds of each step, the steps alternating within every round (so that a drift
    of the machine's speed reaches every implementation alike).

    Each round runs them in a new order (:func:`settle.shuffled_rounds`).
    """
    for step in steps.values():
        step()  # compile and warm up
    times: dict[str, list[float]] = {name: [] for name in steps}
    for order in shuffled_rounds(steps, rounds):
        for name in order:
            step = steps[name]
            settle()
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def run(t_steps: int, n: int, size: int, rounds: int) -> dict[str, float]:
    """Median seconds of one training step of each implementation, alternating round by round."""
    import xrnn

    torch, gru_reset_before, lstm_peephole, indrnn, lstm_zoneout, layernorm_lstm = _torch_cells()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((t_steps, n, size)).astype(np.float32)
    steps: dict[str, Callable[[], object]] = {}

    def xrnn_step(layer: object) -> Callable[[], object]:
        def step() -> object:
            y, _, cache = layer.forward(x)  # type: ignore[attr-defined]
            return layer.backward(cache, dy, need_dx=False)  # type: ignore[attr-defined]

        return step

    dy = rng.standard_normal((t_steps, n, size)).astype(np.float32)
    for name, layer in [
        ("xrnn LSTM", xrnn.LSTM(size, size, xp="numpy", seed=0)),
        ("xrnn GRU", xrnn.GRU(size, size, xp="numpy", seed=0)),
        ("xrnn GRU reset_after=False", xrnn.GRU(size, size, reset_after=False, xp="numpy", seed=0)),
        ("xrnn LSTM peepholes=True", xrnn.LSTM(size, size, peepholes=True, xp="numpy", seed=0)),
        ("xrnn LSTM weight_drop=0.5", xrnn.LSTM(size, size, weight_drop=0.5, xp="numpy", seed=0)),
        ("xrnn IndRNN relu", xrnn.IndRNN(size, size, nonlinearity="relu", xp="numpy", seed=0)),
        ("xrnn LSTM zoneout=0.1", xrnn.LSTM(size, size, zoneout=0.1, xp="numpy", seed=0)),
        ("xrnn LayerNormLSTM", xrnn.LayerNormLSTM(size, size, xp="numpy", seed=0)),
    ]:
        steps[name] = xrnn_step(layer)

    x_t, dy_t = torch.from_numpy(x), torch.from_numpy(dy)
    for name, module in [
        ("torch.nn.LSTM", torch.nn.LSTM(size, size)),
        ("torch.nn.GRU", torch.nn.GRU(size, size)),
    ]:

        def module_step(module: object = module) -> object:
            module.zero_grad()  # type: ignore[attr-defined]
            (module(x_t)[0] * dy_t).sum().backward()  # type: ignore[operator]
            return None

        steps[name] = module_step

    bound = 1 / np.sqrt(size)

    def param(*shape: int) -> object:
        return torch.empty(*shape).uniform_(-bound, bound).requires_grad_()

    w_ih3, w_hh3, b3 = param(3 * size, size), param(3 * size, size), param(3 * size)
    w_ih4, w_hh4, b4, p = param(4 * size, size), param(4 * size, size), param(4 * size), param(3 * size)
    zeros = torch.zeros(n, size)

    def torch_gru_step() -> object:
        gx = (x_t.reshape(-1, size) @ w_ih3.t() + b3).reshape(t_steps, n, -1)
        (gru_reset_before(gx, w_hh3, zeros) * dy_t).sum().backward()
        return None

    def torch_lstm_step() -> object:
        gx = (x_t.reshape(-1, size) @ w_ih4.t() + b4).reshape(t_steps, n, -1)
        (lstm_peephole(gx, w_hh4, p, zeros, zeros) * dy_t).sum().backward()
        return None

    w_ih1, u1, b1 = param(size, size), param(size), param(size)

    def torch_indrnn_step() -> object:
        gx = (x_t.reshape(-1, size) @ w_ih1.t() + b1).reshape(t_steps, n, -1)
        (indrnn(gx, u1, zeros) * dy_t).sum().backward()
        return None

    def torch_zoneout_step() -> object:  # fresh masks every step, as xrnn draws them
        gx = (x_t.reshape(-1, size) @ w_ih4.t() + b4).reshape(t_steps, n, -1)
        m_h, m_c = ((torch.rand(t_steps, n, size) < 0.1).float() for _ in range(2))
        (lstm_zoneout(gx, w_hh4, m_h, m_c, zeros, zeros) * dy_t).sum().backward()
        return None

    module = torch.nn.LSTM(size, size)
    weights = dict(module.named_parameters())

    def torch_weight_drop_step() -> object:  # AWD-LSTM's way: the module run on masked weights
        mask = (torch.rand_like(weights["weight_hh_l0"]) >= 0.5) / 0.5
        dropped = {**weights, "weight_hh_l0": weights["weight_hh_l0"] * mask}
        (torch.func.functional_call(module, dropped, (x_t,))[0] * dy_t).sum().backward()
        return None

    steps["torch.nn.LSTM, masked weight_hh"] = torch_weight_drop_step
    steps["torch.jit.script reset-before GRU"] = torch_gru_step
    steps["torch.jit.script peephole LSTM"] = torch_lstm_step
    steps["torch.jit.script IndRNN relu"] = torch_indrnn_step
    steps["torch.jit.script LSTM zoneout=0.1"] = torch_zoneout_step

    torch_layernorm_step = torch_layernorm_lstm_step(torch, layernorm_lstm, x_t, dy_t)
    steps["torch.jit.script LayerNorm LSTM"] = torch_layernorm_step
    return _time(steps, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny shapes (a smoke run)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="BLAS and torch threads")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    shape = (4, 3, 5) if args.quick else (100, 64, 256)
    results = on_threads(args.threads, lambda: run(*shape, args.rounds))
    load = os.getloadavg()[0]
    base = results["xrnn LSTM"]
    print(f"T={shape[0]} N={shape[1]} I=H={shape[2]} float32, one training step; load average {load:.2f}\n")
    print("| implementation | seconds | / xrnn LSTM |\n|---|---:|---:|")
    for name, seconds in results.items():
        print(f"| {name} | {seconds:.4f} | {seconds / base:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"shape": shape, "load": load, "seconds": results}, f, indent=1)


if __name__ == "__main__":
    main()
