"""Backends: where arrays are created, that results follow their inputs, and agreement with NumPy."""

from __future__ import annotations

import ast
import pathlib

import numpy as np
import pytest
from array_api_compat import array_namespace

import xrnn
from helpers import asarray, assert_close, backend_name, layer_class, to_numpy
from xrnn import classic
from xrnn._util.namespaces import resolve_namespace

SRC = pathlib.Path(xrnn.__file__).parent
# The modules that may import NumPy, and why. Every other module (a new one too) may not:
# the engine, the cells and the public faces run on any namespace.
MAY_IMPORT_NUMPY = {
    "_util/namespaces.py": "the host random generator that seeds parameters on any backend",
    "backends/numba": "NumPy's own backend",
    "backends/cuda/ops.py": "under the CUDA simulator the kernels run on NumPy arrays (tests)",
    "backends/views.py": "torch and JAX CPU arrays are viewed as NumPy arrays for the Numba loops",
    "cli/command.py": "the command reads and prints host data",
    "cli/gradflow.py": "the gradient flow is measured on a float64 NumPy copy of the model",
    "data/sequences.py": "datasets read and prepared on the host",
    "data/text.py": "datasets read and prepared on the host",
    "io": "files hold host arrays: checkpoints (.npz), ONNX graphs and Keras weights",
    "distributed/_agreement.py": "each rank's dropout generator is a NumPy Generator, as xrnn's host RNG",
    "distributed/_predict.py": "the lengths of a Dask prediction are a host int64 array, chunked as x",
    "nn/inputs.py": "array-likes (lists, pandas objects) are host data, read with NumPy before conversion",
    "_util/validation.py": "lengths given as a pandas Series are read on the host",
    "training/plots.py": "matplotlib takes host arrays",
}


def _numpy_importers() -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text())
        imported = [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
        imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        if any(name.split(".")[0] == "numpy" for name in imported):
            found.append(path.relative_to(SRC).as_posix())
    return found


def test_only_the_allowed_modules_import_numpy():
    importers = _numpy_importers()
    outside = [m for m in importers if not any(m == a or m.startswith(a + "/") for a in MAY_IMPORT_NUMPY)]
    assert not outside, f"modules outside the allow-list import NumPy: {outside}"
    assert "engine/scan.py" in [p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py")]


def test_xrnn_backend_picks_where_parameters_are_created(xp, monkeypatch):
    name = backend_name(xp)
    monkeypatch.setenv("XRNN_BACKEND", name)
    assert xrnn.get_backend() == name
    layer = xrnn.GRU(3, 4, seed=0)
    assert all(array_namespace(v) is xp for v in layer.params.values())
    assert str(layer.params["weight_hh_l0"].dtype).endswith("float32")


def test_use_backend_overrides_the_variable_inside_its_block_only(xp, monkeypatch):
    name = backend_name(xp)
    monkeypatch.setenv("XRNN_BACKEND", "numpy")
    with xrnn.use_backend(name) as inner:
        assert inner is xp and xrnn.get_backend() == name
        assert array_namespace(xrnn.LSTM(2, 3).params["weight_ih_l0"]) is xp
    assert xrnn.get_backend() == "numpy"


def test_operations_follow_the_arrays_not_the_variable(xp, monkeypatch):
    monkeypatch.setenv("XRNN_BACKEND", "numpy")
    layer = xrnn.RNN(2, 3, xp=xp, dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    monkeypatch.setenv("XRNN_BACKEND", "array_api_strict")
    y, h, _ = layer.forward(asarray(xp, rng.standard_normal((4, 2, 2)), "float64"))
    assert array_namespace(y) is xp and array_namespace(h) is xp
    a, _, _ = classic.rnn_forward(
        asarray(xp, rng.standard_normal((2, 3, 4)), "float32"),
        asarray(xp, np.zeros((3, 3)), "float32"),
        {
            k: asarray(xp, v, "float32")
            for k, v in {
                "Wax": np.ones((3, 2)),
                "Waa": np.eye(3),
                "Wya": np.ones((1, 3)),
                "ba": np.zeros((3, 1)),
                "by": np.zeros((1, 1)),
            }.items()
        },
    )
    assert array_namespace(a) is xp and str(a.dtype).endswith("float32")


@pytest.mark.parametrize("module_name", ["numpy", "torch", "jax.numpy", "array_api_strict"])
def test_xp_accepts_a_namespace_module(module_name):
    module = pytest.importorskip(module_name)
    layer = xrnn.LSTM(2, 3, xp=module, seed=0)
    expected = resolve_namespace(module_name.split(".")[0])
    assert array_namespace(layer.params["weight_ih_l0"]) is expected


def test_every_backend_equals_numpy_within_dtype_tolerance(xp, dtype, kind):
    cls, options = layer_class(kind)
    ref = cls(3, 5, num_layers=2, bidirectional=True, xp="numpy", dtype="float64", seed=1, **options)
    layer = cls.from_state_dict(ref.state_dict(), xp=xp, dtype=dtype, **options)
    rng = np.random.default_rng(2)
    x, dy = rng.standard_normal((7, 4, 3)), rng.standard_normal((7, 4, 10))
    lengths = [7, 3, 1, 6]
    y_ref, _, cache_ref = ref.forward(x, lengths=lengths)
    dx_ref, _, g_ref = ref.backward(cache_ref, dy)
    y, _, cache = layer.forward(asarray(xp, x, dtype), lengths=lengths)
    dx, _, g = layer.backward(cache, asarray(xp, dy, dtype))
    assert_close(y, y_ref, xp=xp, dtype=dtype)
    assert_close(dx, dx_ref, xp=xp, dtype=dtype)
    for key in g_ref:
        assert_close(g[key], g_ref[key], xp=xp, dtype=dtype)


def test_from_state_dict_converts_values_of_any_namespace_and_keeps_their_dtype(xp):
    torch = pytest.importorskip("torch")
    module = torch.nn.GRU(3, 4, dtype=torch.float64)
    layer = xrnn.GRU.from_state_dict(module.state_dict(), xp=xp)
    assert array_namespace(layer.params["weight_ih_l0"]) is xp
    assert str(layer.params["weight_ih_l0"].dtype).endswith("float64")
    for key, value in module.state_dict().items():
        assert np.array_equal(to_numpy(layer.params[key]), value.numpy())
    as32 = xrnn.GRU.from_state_dict(layer.state_dict(), xp="numpy", dtype="float32")
    assert as32.params["weight_ih_l0"].dtype == np.float32


def test_sum_rows_sums_every_leading_axis_of_a_strided_view_without_changing_it(xp, dtype):
    from xrnn._util.sums import sum_rows

    rng = np.random.default_rng(3)
    whole = rng.standard_normal((6, 5, 12))
    a = asarray(xp, whole, dtype)
    before = to_numpy(a).copy()
    got = sum_rows(a[:, :, 4:], xp=xp)  # the columns of a gradient after its gates'
    assert tuple(got.shape) == (8,)
    assert_close(got, whole[:, :, 4:].sum(axis=(0, 1)), xp=xp, dtype=dtype)
    np.testing.assert_array_equal(to_numpy(a), before)
