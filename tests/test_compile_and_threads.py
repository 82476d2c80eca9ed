"""The first compilation said once (a logging record, a line of the command); one thread policy."""

from __future__ import annotations

import logging

import pytest

import xrnn
from xrnn.cli import command, report

numba = pytest.importorskip("numba")
compile_ = pytest.importorskip("xrnn.backends.numba.compile")


def _kernel(module):
    def double(v):
        return 2 * v

    double.__module__ = module
    return numba.njit(double)


def test_the_first_compilation_of_xrnns_kernels_is_one_logging_record(monkeypatch, caplog):
    monkeypatch.setattr(compile_._FirstCompilation, "said", False)
    with caplog.at_level(logging.INFO, logger="xrnn.compile"):
        assert _kernel("elsewhere")(1) == 2  # another library's compilation is not xrnn's to report
        assert caplog.records == []
        assert _kernel("xrnn.backends.numba.loops")(1) == 2
        assert _kernel("xrnn.backends.numba.kernels")(2) == 4
    (record,) = caplog.records
    assert record.name == "xrnn.compile" and record.levelno == logging.INFO
    assert record.getMessage().startswith("compiling the kernels for this machine (once")


def test_the_command_prints_the_compilation_record_as_one_line(capsys):
    with report.say_compiling():
        compile_.LOGGER.info("compiling the kernels for this machine (once); later runs load them")
    compile_.LOGGER.info("outside the command: not printed")
    assert (
        capsys.readouterr().err
        == "xrnn: compiling the kernels for this machine (once); later runs load them\n"
    )


def test_python_m_xrnn_version_prints_the_version(capsys):
    with pytest.raises(SystemExit) as info:
        command.main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out == f"xrnn {xrnn.__version__}\n"


def test_the_command_leaves_the_thread_pools_as_python_does_unless_asked():
    assert command._parser().parse_args(["demo"]).threads is None
    assert command._parser().parse_args(["demo", "--threads", "1"]).threads == 1


def test_cpu_threads_limits_blas_inside_the_block_and_restores_it():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    blas = [p for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    if not blas:
        pytest.skip("no BLAS thread pool found by threadpoolctl")
    before = [p["num_threads"] for p in blas]
    with xrnn.cpu_threads(1):
        inside = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    after = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    assert set(inside) == {1} and after == before


def test_cpu_threads_refuses_a_count_that_is_not_positive():
    with pytest.raises(ValueError, match="threads must be a positive int, got 0"), xrnn.cpu_threads(0):
        pass
