"""The straightforward implementation the benchmarks compare with: the classic formulation as written.

Features first (``h`` is ``(H, N)``), one step at a time, per-gate matmuls on the
concatenated input ``[h; x]``, nothing hoisted out of the loop, the per-step caches of the
classic formulation, and weight gradients accumulated step by step. This is what the
engine's design (hoisted input projection, one fused gate matmul per step, post-loop weight
gradients, fused pointwise kernels) is measured against. It is plain NumPy and never uses xrnn.

:class:`StraightforwardLayer` takes ``torch.nn``-style parameters (any number of layers,
either direction) and ``(T, N, I)`` sequences; :func:`lstm_forward` and
:func:`lstm_backward` have the signatures of ``xrnn.classic``.
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray
GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1}


def sigmoid(z: Array) -> Array:
    return 1 / (1 + np.exp(-z))


# ------------------------------------------------------------------- one step per cell


def lstm_step(xt: Array, h: Array, c: Array, p: dict[str, Array]) -> tuple[Array, Array, tuple]:
    concat = np.concatenate([h, xt], axis=0)  # (H + I, N)
    ft = sigmoid(p["Wf"] @ concat + p["bf"])
    it = sigmoid(p["Wi"] @ concat + p["bi"])
    cct = np.tanh(p["Wc"] @ concat + p["bc"])
    ot = sigmoid(p["Wo"] @ concat + p["bo"])
    c_next = ft * c + it * cct
    h_next = ot * np.tanh(c_next)
    return h_next, c_next, (h_next, c_next, h, c, ft, it, cct, ot, xt, p)  # the classic cache


def lstm_step_backward(dh: Array, dc: Array, cache: tuple, p: dict, g: dict) -> tuple[Array, Array, Array]:
    h_next, c_next, h, c, ft, it, cct, ot, xt, _ = cache
    concat = np.concatenate([h, xt], axis=0)
    tanh_c = np.tanh(c_next)
    dot = dh * tanh_c * ot * (1 - ot)
    dc = dc + dh * ot * (1 - tanh_c**2)
    dcct = dc * it * (1 - cct**2)
    dit = dc * cct * it * (1 - it)
    dft = dc * c * ft * (1 - ft)
    for gate, dz in (("f", dft), ("i", dit), ("c", dcct), ("o", dot)):
        g[f"W{gate}"] += dz @ concat.T
        g[f"b{gate}"] += np.sum(dz, axis=1, keepdims=True)
    dconcat = p["Wf"].T @ dft + p["Wi"].T @ dit + p["Wc"].T @ dcct + p["Wo"].T @ dot
    n_h = h.shape[0]
    return dconcat[n_h:], dconcat[:n_h], dc * ft


def gru_step(xt: Array, h: Array, p: dict[str, Array]) -> tuple[Array, tuple]:
    concat = np.concatenate([h, xt], axis=0)
    r = sigmoid(p["Wr"] @ concat + p["br"])
    z = sigmoid(p["Wz"] @ concat + p["bz"])
    hn = p["Whn"] @ h + p["bhn"]
    n = np.tanh(p["Win"] @ xt + p["bin"] + r * hn)
    h_next = (1 - z) * n + z * h
    return h_next, (h, xt, concat, r, z, n, hn)


def gru_step_backward(dh: Array, cache: tuple, p: dict, g: dict) -> tuple[Array, Array]:
    h, xt, concat, r, z, n, hn = cache
    dan = dh * (1 - z) * (1 - n**2)
    dz = dh * (h - n) * z * (1 - z)
    dr = dan * hn * r * (1 - r)
    g["Wr"] += dr @ concat.T
    g["Wz"] += dz @ concat.T
    g["Win"] += dan @ xt.T
    g["Whn"] += (dan * r) @ h.T
    for name, d in (("br", dr), ("bz", dz), ("bin", dan), ("bhn", dan * r)):
        g[name] += np.sum(d, axis=1, keepdims=True)
    dconcat = p["Wr"].T @ dr + p["Wz"].T @ dz
    n_h = h.shape[0]
    dh_prev = dh * z + dconcat[:n_h] + p["Whn"].T @ (dan * r)
    return dconcat[n_h:] + p["Win"].T @ dan, dh_prev


def rnn_step(xt: Array, h: Array, p: dict[str, Array]) -> tuple[Array, tuple]:
    concat = np.concatenate([h, xt], axis=0)
    h_next = np.tanh(p["W"] @ concat + p["b"])
    return h_next, (h_next, concat)


def rnn_step_backward(dh: Array, cache: tuple, p: dict, g: dict) -> tuple[Array, Array]:
    h_next, concat = cache
    dz = dh * (1 - h_next**2)
    g["W"] += dz @ concat.T
    g["b"] += np.sum(dz, axis=1, keepdims=True)
    dconcat = p["W"].T @ dz
    n_h = h_next.shape[0]
    return dconcat[n_h:], dconcat[:n_h]


# ---------------------------------------------------------------------- layers


def _per_gate(cell: str, sd: dict[str, Array], s: str) -> dict[str, Array]:
    """Torch's fused blocks of one layer and direction as per-gate weights on ``[h; x]``."""
    w_ih, w_hh = sd[f"weight_ih_{s}"], sd[f"weight_hh_{s}"]
    b_ih, b_hh = sd[f"bias_ih_{s}"][:, None], sd[f"bias_hh_{s}"][:, None]
    hidden = w_hh.shape[1]

    def block(a: Array, k: int) -> Array:
        return a[k * hidden : (k + 1) * hidden]

    if cell == "gru":
        p = {f"W{g}": np.concatenate([block(w_hh, k), block(w_ih, k)], axis=1) for k, g in enumerate("rz")}
        p |= {f"b{g}": block(b_ih, k) + block(b_hh, k) for k, g in enumerate("rz")}
        p |= {"Win": block(w_ih, 2), "Whn": block(w_hh, 2), "bin": block(b_ih, 2), "bhn": block(b_hh, 2)}
        return p
    names = ["i", "f", "c", "o"] if cell == "lstm" else [""]
    p = {f"W{g}": np.concatenate([block(w_hh, k), block(w_ih, k)], axis=1) for k, g in enumerate(names)}
    return p | {f"b{g}": block(b_ih, k) + block(b_hh, k) for k, g in enumerate(names)}


def _to_torch_keys(cell: str, g: dict[str, Array], s: str, hidden: int) -> dict[str, Array]:
    """Per-gate gradients back into torch's ``weight_ih``/``weight_hh``/``bias_*`` blocks."""
    if cell == "gru":
        w_ih = [g["Wr"][:, hidden:], g["Wz"][:, hidden:], g["Win"]]
        w_hh = [g["Wr"][:, :hidden], g["Wz"][:, :hidden], g["Whn"]]
        b_ih, b_hh = [g["br"], g["bz"], g["bin"]], [g["br"], g["bz"], g["bhn"]]
    else:
        names = ["i", "f", "c", "o"] if cell == "lstm" else [""]
        w_ih = [g[f"W{n}"][:, hidden:] for n in names]
        w_hh = [g[f"W{n}"][:, :hidden] for n in names]
        b_ih = b_hh = [g[f"b{n}"] for n in names]
    return {
        f"weight_ih_{s}": np.concatenate(w_ih),
        f"weight_hh_{s}": np.concatenate(w_hh),
        f"bias_ih_{s}": np.concatenate(b_ih)[:, 0],
        f"bias_hh_{s}": np.concatenate(b_hh)[:, 0],
    }


class StraightforwardLayer:
    """A stack of recurrent layers run the straightforward way; zero initial state.

    Parameters
    ----------
    cell : {"lstm", "gru", "rnn_tanh"}
        The cell.
    state_dict : dict of str to ndarray
        Parameters under ``torch.nn``'s keys.
    num_layers, bidirectional
        As ``torch.nn.LSTM``.
    """

    def __init__(self, cell: str, state_dict: dict[str, Array], num_layers: int, bidirectional: bool):
        self.cell, self.num_layers = cell, num_layers
        self.suffixes = ["", "_reverse"] if bidirectional else [""]
        self.hidden = state_dict["weight_hh_l0"].shape[1]
        keys = [f"l{k}{s}" for k in range(num_layers) for s in self.suffixes]
        self.params = {key: _per_gate(cell, state_dict, key) for key in keys}

    def _run(self, x: Array, p: dict[str, Array]) -> tuple[Array, list[tuple]]:
        """One direction over ``x (T, N, I)`` in the given order; ``y (T, N, H)``."""
        n = x.shape[1]
        h = np.zeros((self.hidden, n), dtype=x.dtype)
        c = np.zeros_like(h)
        ys, caches = [], []
        for t in range(x.shape[0]):
            xt = x[t].T  # (I, N)
            if self.cell == "lstm":
                h, c, cache = lstm_step(xt, h, c, p)
            elif self.cell == "gru":
                h, cache = gru_step(xt, h, p)
            else:
                h, cache = rnn_step(xt, h, p)
            ys.append(h.T)
            caches.append(cache)
        return np.stack(ys), caches

    def _run_backward(self, dy: Array, caches: list[tuple], p: dict[str, Array]) -> tuple[Array, dict]:
        g = {k: np.zeros_like(v) for k, v in p.items()}
        dh = np.zeros((self.hidden, dy.shape[1]), dtype=dy.dtype)
        dc = np.zeros_like(dh)
        dxs = []
        for t in reversed(range(dy.shape[0])):
            dh = dh + dy[t].T
            if self.cell == "lstm":
                dxt, dh, dc = lstm_step_backward(dh, dc, caches[t], p, g)
            elif self.cell == "gru":
                dxt, dh = gru_step_backward(dh, caches[t], p, g)
            else:
                dxt, dh = rnn_step_backward(dh, caches[t], p, g)
            dxs.append(dxt.T)
        return np.stack(dxs[::-1]), g

    def forward(self, x: Array) -> tuple[Array, list]:
        """``y (T, N, D*H)`` and the caches of every layer and direction."""
        caches = []
        for k in range(self.num_layers):
            outs = []
            for s in self.suffixes:
                seq = x[::-1] if s else x
                y, cache = self._run(seq, self.params[f"l{k}{s}"])
                outs.append(y[::-1] if s else y)
                caches.append(cache)
            x = np.concatenate(outs, axis=2) if len(outs) > 1 else outs[0]
        return x, caches

    def backward(self, caches: list, dy: Array) -> tuple[Array, dict[str, Array]]:
        """``dx`` and the parameter gradients under torch's keys."""
        grads: dict[str, Array] = {}
        d = len(self.suffixes)
        for k in reversed(range(self.num_layers)):
            dx = None
            for j, s in enumerate(self.suffixes):
                dy_j = dy[:, :, j * self.hidden : (j + 1) * self.hidden]
                dy_j = dy_j[::-1] if s else dy_j
                dx_j, g = self._run_backward(dy_j, caches[k * d + j], self.params[f"l{k}{s}"])
                dx_j = dx_j[::-1] if s else dx_j
                dx = dx_j if dx is None else dx + dx_j
                grads |= _to_torch_keys(self.cell, g, f"l{k}{s}", self.hidden)
            dy = dx
        return dy, grads


# -------------------------------------------------------------- the classic API's LSTM


def softmax(z: Array) -> Array:
    e = np.exp(z - np.max(z, axis=0, keepdims=True))
    return e / np.sum(e, axis=0, keepdims=True)


def lstm_forward(x: Array, a0: Array, parameters: dict[str, Array]) -> tuple[Array, Array, Array, tuple]:
    """``xrnn.classic.lstm_forward``, step by step: ``a, y, c`` are ``(n, m, T_x)``."""
    n_a, m = a0.shape
    t_x = x.shape[2]
    a = np.zeros((n_a, m, t_x), dtype=x.dtype)
    c = np.zeros_like(a)
    y = np.zeros((parameters["Wy"].shape[0], m, t_x), dtype=x.dtype)
    a_next, c_next = a0, np.zeros_like(a0)
    caches = []
    for t in range(t_x):
        a_next, c_next, cache = lstm_step(x[:, :, t], a_next, c_next, parameters)
        a[:, :, t], c[:, :, t] = a_next, c_next
        y[:, :, t] = softmax(parameters["Wy"] @ a_next + parameters["by"])
        caches.append(cache)
    return a, y, c, (caches, x)


def lstm_backward(da: Array, caches: tuple) -> dict[str, Array]:
    """``xrnn.classic.lstm_backward``, step by step."""
    cells, x = caches
    p = cells[0][9]
    n_a, m, t_x = da.shape
    g = {k: np.zeros_like(p[k]) for k in ("Wf", "bf", "Wi", "bi", "Wc", "bc", "Wo", "bo")}
    dx = np.zeros((x.shape[0], m, t_x), dtype=da.dtype)
    da_prev = np.zeros((n_a, m), dtype=da.dtype)
    dc_prev = np.zeros_like(da_prev)
    for t in reversed(range(t_x)):
        dx[:, :, t], da_prev, dc_prev = lstm_step_backward(da[:, :, t] + da_prev, dc_prev, cells[t], p, g)
    return {"dx": dx, "da0": da_prev, **{f"d{k}": v for k, v in g.items()}}
