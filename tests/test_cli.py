"""``python -m xrnn``: every subcommand on tiny settings, with and without the optional extras."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
from array_api_compat import array_namespace

import xrnn
from helpers import backend_name
from xrnn.cli import main

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
        (["sample", "missing.npz"], "checkpoint 'missing.npz' does not exist"),
    ],
)
def test_usage_errors_exit_with_status_1_and_a_message(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, _, err = run(capsys, *argv)
    assert status == 1 and message in err


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
