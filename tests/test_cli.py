"""``python -m xrnn``: every subcommand on tiny settings, with and without the optional extras."""

from __future__ import annotations

import math
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
from array_api_compat import array_namespace

import xrnn
from conftest import BACKENDS
from helpers import backend_name
from xrnn.cli import command as cli
from xrnn.cli import gradflow
from xrnn.cli.command import main

ROOT = pathlib.Path(__file__).parents[1]
PNG = b"\x89PNG\r\n\x1a\n"
TINY = ["--steps", "3", "--hidden", "4", "--batch-size", "4"]


def run(capsys, *argv):
    """``python -m xrnn *argv`` in this process, on NumPy unless ``--backend`` says otherwise.

    The command's logic is the same on every backend (the library's tests cover each);
    one test below runs the demo on the backend under test.
    """
    argv = list(argv)
    if "--backend" not in argv and "--help" not in argv:
        argv += ["--backend", "numpy"]
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def test_demo_trains_on_the_adding_problem_and_reports_mse_against_the_baseline(tmp_path, capsys):
    status, out, err = run(capsys, "demo", *TINY, "--seq-len", "6", "--out", str(tmp_path))
    assert status == 0, err
    assert "xrnn demo: adding task, lstm with hidden size 4" in out
    assert "MSE on 1000 held-out sequences of length 50: " in out
    assert "(baseline, always predicting 1.0: 0.1" in out
    assert (tmp_path / "adding-lstm-loss.png").read_bytes().startswith(PNG)
    model, optimizer, metadata = xrnn.load_checkpoint(tmp_path / "adding-lstm.npz")
    assert model.config["hidden_size"] == 4 and optimizer.state["step"] == 3
    assert metadata["task"] == "adding"


def test_demo_runs_on_the_backend_it_is_given(tmp_path, capsys, xp):
    name = backend_name(xp)
    argv = ["demo", "--cell", "rnn", *TINY, "--seq-len", "6", "--backend", name, "--out", str(tmp_path)]
    status, out, err = run(capsys, *argv)
    assert status == 0, err
    assert f"{xp.__name__.removeprefix('array_api_compat.')} float32" in out
    model, _, _ = xrnn.load_checkpoint(tmp_path / "adding-rnn.npz", xp=xp)
    assert all(array_namespace(v) is xp for v in model.params.values())


def test_demo_shows_a_progress_bar_with_the_running_loss(tmp_path, capsys):
    _, _, err = run(capsys, "demo", *TINY, "--seq-len", "6", "--out", str(tmp_path))
    assert "training: 100%" in err and "3/3" in err and "loss=" in err


def test_demo_learns_the_embedded_reber_grammar(tmp_path, capsys):
    status, out, err = run(capsys, "demo", "--task", "reber", "--cell", "gru", *TINY, "--out", str(tmp_path))
    assert status == 0, err
    assert "accuracy on 1000 held-out strings" in out and "(baseline, no long-term memory: 95" in out
    assert (tmp_path / "reber-gru.npz").exists() and (tmp_path / "reber-gru-loss.png").exists()


def test_demo_on_a_text_then_sample_prints_generated_text(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat.\nthe dog sat on the log.\n" * 3, encoding="utf-8")
    status, out, err = run(
        capsys, "demo", "--task", "text", "--cell", "rnn", *TINY, "--seq-len", "8",
        "--corpus", str(corpus), "--out", str(tmp_path),
    )  # fmt: skip
    assert status == 0, err
    assert "bits per character on 256 windows of 8 characters" in out
    assert "of its words are words of the corpus" in out
    status, out, err = run(
        capsys, "sample", str(tmp_path / "text-rnn.npz"), "--length", "30", "--prime", "the"
    )
    assert status == 0, err
    assert out.startswith("the") and len(out.rstrip("\n")) >= 33
    assert set(out) <= set(corpus.read_text())


def test_sample_is_reproducible_with_a_seed(tmp_path, capsys):
    run(capsys, "demo", "--task", "text", *TINY, "--seq-len", "8", "--out", str(tmp_path))
    path = str(tmp_path / "text-lstm.npz")
    first = run(capsys, "sample", path, "--length", "40", "--seed", "3")[1]
    assert run(capsys, "sample", path, "--length", "40", "--seed", "3")[1] == first


def test_gradflow_reports_the_ratio_for_each_cell_and_writes_a_png(tmp_path, capsys):
    status, out, err = run(capsys, "gradflow", *TINY, "--seq-len", "6", "--out", str(tmp_path))
    assert status == 0, err
    for cell in ("rnn", "lstm", "gru"):
        assert f"{cell:>4}: held-out MSE" in out
    assert out.count("gradient at step 1 / at step 6:") == 3
    assert "times more of the gradient" in out
    assert (tmp_path / "gradflow.png").read_bytes().startswith(PNG)


def test_without_tqdm_and_matplotlib_progress_is_text_and_the_figure_is_skipped(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    status, out, err = run(capsys, "demo", *TINY, "--seq-len", "6", "--out", str(tmp_path))
    assert status == 0, err
    assert "training: step 3/3  loss" in out
    assert "needs matplotlib: pip install matplotlib" in out
    assert (tmp_path / "adding-lstm.npz").exists() and not (tmp_path / "adding-lstm-loss.png").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--task", "reber", "--seq-len", "5"], "--seq-len does not apply to --task reber"),
        (["demo", "--task", "adding", "--corpus", "x.txt"], "--corpus applies to --task text only"),
        (["demo", "--task", "text", "--corpus", "missing.txt"], "corpus file 'missing.txt' does not exist"),
    ],
)
def test_settings_that_cannot_work_are_usage_errors_before_training(
    argv, message, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "train", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(SystemExit) as exc:
        run(capsys, *argv)
    out, err = capsys.readouterr()
    last = err.splitlines()[-1]  # argparse's usage, then one line saying what is wrong
    assert exc.value.code == 2 and out == "" and "Traceback" not in err
    assert last.startswith(f"python -m xrnn {argv[0]}: error: ") and message in last


def test_a_missing_checkpoint_is_an_error_with_status_1(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, _, err = run(capsys, "sample", "missing.npz")
    assert status == 1 and "checkpoint 'missing.npz' does not exist" in err


def test_sample_refuses_a_checkpoint_that_is_not_a_text_model(tmp_path, capsys):
    run(capsys, "demo", *TINY, "--seq-len", "6", "--out", str(tmp_path))
    status, _, err = run(capsys, "sample", str(tmp_path / "adding-lstm.npz"))
    assert status == 1 and "is not a text model (task 'adding')" in err


def test_sample_refuses_a_damaged_checkpoint(tmp_path, capsys):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"PK\x03\x04 broken")
    status, _, err = run(capsys, "sample", str(path))
    assert status == 1 and "not a readable xrnn checkpoint" in err


def test_bad_arguments_are_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--task", "chess"])
    assert exc.value.code == 2 and "invalid choice: 'chess'" in capsys.readouterr().err


def test_python_dash_m_xrnn_runs_the_command():
    src = str(pathlib.Path(xrnn.__file__).parents[1])
    env = os.environ | {"PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-m", "xrnn", "--help"], capture_output=True, text=True, env=env)
    assert done.returncode == 0
    assert all(name in done.stdout for name in ("demo", "sample", "gradflow"))


def _readme_block(text, first_line):
    """The lines of the code block in ``text`` that starts with ``first_line`` (README or rst)."""
    lines = [line.strip() for line in text.splitlines()]
    start = lines.index(first_line)
    return lines[start : lines.index("", start)] if "" in lines[start:] else lines[start:]


def test_gradflow_with_its_defaults_prints_what_the_readme_and_the_docs_show(tmp_path, capsys):
    # The defaults stop before the vanilla RNN's training turns chaotic, so this holds on the
    # compiled path and on XRNN_NUMBA=0 alike (docs/gradflow.rst).
    if "numpy" not in BACKENDS:
        pytest.skip("the command runs on NumPy here; the numpy leg runs it once")
    status, out, err = run(capsys, "gradflow", "--out", str(tmp_path))
    assert status == 0, err
    printed = [line.strip() for line in out.splitlines()[:5]]
    assert printed[0].startswith("xrnn gradflow: adding problem, seq-len 50, hidden size 32")
    for page in ("README.md", "docs/gradflow.rst"):
        shown = _readme_block((ROOT / page).read_text(encoding="utf-8"), printed[0])
        assert shown[:5] == printed, page
    assert (tmp_path / "gradflow.png").read_bytes().startswith(PNG)


def test_gradflow_says_so_when_no_gradient_reaches_the_first_step(tmp_path, capsys, monkeypatch):
    # Trained for 1000 steps, the vanilla RNN passes back ~1e-41 of the gradient: zero in
    # float32, where the command once divided by it.
    measured = []

    def first_step_zero_for_the_rnn(model, x):
        g = xrnn.gradient_by_step(model, x)
        measured.append(model.cell)
        return np.concatenate([np.zeros(1), g[1:]]) if model.cell == "rnn" else g

    monkeypatch.setattr(gradflow, "gradient_by_step", first_step_zero_for_the_rnn)
    status, out, err = run(capsys, "gradflow", *TINY, "--seq-len", "6", "--out", str(tmp_path))
    assert status == 0, err
    assert measured == ["rnn", "lstm", "gru"]
    assert " rnn: held-out MSE" in out and "at step 6: 0 (no gradient reaches step 1, even in float64)" in out
    assert "none of the vanilla RNN's gradient reaches step 1, while the LSTM's ratio is" in out
    assert (tmp_path / "gradflow.png").read_bytes().startswith(PNG)


def test_gradflow_measures_in_float64_a_gradient_that_float32_loses():
    # A nearly linear RNN whose recurrent weight is 0.05: the gradient shrinks 20-fold per
    # step, to ~1e-64 of itself at step 1 of 50, below float32's smallest number.
    model = xrnn.SequenceModel("rnn", 2, 3, 1, xp="numpy", dtype="float32", seed=0)
    params = {k: np.zeros_like(v) for k, v in model.params.items()}
    params["rnn.weight_hh_l0"] = np.eye(3, dtype=np.float32) * 0.05
    params["rnn.weight_ih_l0"] = np.full((3, 2), 0.1, np.float32)
    params["head.weight"] = np.ones((1, 3), np.float32)
    model.set_params(params)
    x = np.full((50, 4, 2), 0.5, np.float32)
    assert float(xrnn.gradient_by_step(model, x)[0]) == 0.0  # float32 underflows
    flow = gradflow.gradient_flow(model, x)
    assert len(flow) == 50 and all(isinstance(g, float) for g in flow)
    assert 1e-66 < flow[0] / flow[-1] < 1e-62  # 0.05**49 = 1.8e-64, times tanh's slopes


FLOW_RATIOS = {
    "ordinary": ([0.2, 0.1], 2.0, "2"),
    "tiny": ([4.8e-42, 0.1], 4.8e-41, "4.8e-41"),
    "zero_at_the_first_step": ([0.0, 0.1], 0.0, "0 (no gradient reaches step 1, even in float64)"),
    "zero_at_the_last_step": ([0.1, 0.0], None, "undefined (gradient 0.1 at step 1, 0 at step 2)"),
    "not_a_number": ([math.nan, 0.1], None, "undefined (gradient nan at step 1, 0.1 at step 2)"),
}


@pytest.mark.parametrize("case", list(FLOW_RATIOS))
def test_gradflow_prints_every_ratio_without_dividing_by_zero(case):
    norms, ratio, shown = FLOW_RATIOS[case]
    assert gradflow.flow_ratio(norms) == (ratio if ratio is None else pytest.approx(ratio), shown)


@pytest.mark.parametrize(
    ("lstm", "rnn", "line"),
    [
        (2.9, 1.04e-6, "the LSTM keeps 2.8e+06 times more of the gradient across the sequence"),
        (2.3, 0.0, "none of the vanilla RNN's gradient reaches step 1, while the LSTM's ratio is 2.3"),
        (2.3, 5e-324, "the LSTM keeps more than 1e+308 times more of the gradient"),
        (2.3, None, "cannot be compared: a ratio above is undefined"),
    ],
)
def test_gradflow_compares_the_lstm_with_the_rnn_in_every_case(lstm, rnn, line):
    assert line in gradflow.compare_flows(lstm, rnn)


def test_the_text_demo_plots_its_loss_in_the_unit_it_prints(tmp_path, capsys, monkeypatch):
    trained, drawn = [], {}
    real_train = cli.train
    monkeypatch.setattr(cli, "train", lambda *a, **k: trained.extend(real_train(*a, **k)) or trained)
    monkeypatch.setattr(cli, "plot_loss_curve", lambda values, path, **k: drawn.update(k, values=values))
    status, out, err = run(capsys, "demo", "--task", "text", *TINY, "--seq-len", "8", "--out", str(tmp_path))
    assert status == 0, err
    metric = re.search(r"^(.+) on 256 windows", out, re.M).group(1)
    assert metric == "bits per character" and metric in drawn["ylabel"]
    assert drawn["values"] == pytest.approx([nats / math.log(2) for nats in trained])
