"""Checkpoints under attack: nothing a file holds is executed, nothing half-written is left."""

from __future__ import annotations

import os

import numpy as np
import pytest

import xrnn
from xrnn import CheckpointError, load_checkpoint, save_checkpoint

MARKER = "xrnn-pickle-payload-ran"


class Payload:
    """Unpickling this object would create a marker file: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _model():
    return xrnn.SequenceModel("gru", 2, 3, 1, xp="numpy", seed=0)


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.npz"
    save_checkpoint(path, _model(), xrnn.Adam())
    return path


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_a_pickle_payload_is_refused_and_never_executed(tmp_path, good):
    marker = tmp_path / MARKER
    with np.load(good) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["payload"] = np.array([Payload(str(marker))], dtype=object)
    evil = tmp_path / "evil.npz"
    np.savez(evil, **arrays)
    with pytest.raises(CheckpointError, match="not a readable xrnn checkpoint"):
        load_checkpoint(evil)
    assert not marker.exists()


def test_extra_arrays_are_refused(tmp_path, good):
    with np.load(good) as f:
        arrays = {k: f[k] for k in f.files}
    np.savez(tmp_path / "extra.npz", **arrays, smuggled=np.zeros(3, np.float32))
    with pytest.raises(CheckpointError, match=r"unexpected \['smuggled'\]"):
        load_checkpoint(tmp_path / "extra.npz")


@pytest.mark.parametrize("keep", [0, 100, 0.5, 0.99])
def test_a_truncated_file_is_refused(tmp_path, good, keep):
    data = good.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: int(keep * len(data)) if isinstance(keep, float) else keep])
    with pytest.raises(CheckpointError, match="not a readable xrnn checkpoint"):
        load_checkpoint(cut)


def test_a_directory_where_the_file_is_expected_is_refused_on_load_and_on_save(tmp_path):
    folder = tmp_path / "model.npz"
    folder.mkdir()
    with pytest.raises(CheckpointError, match="is a directory; a checkpoint must be a regular file"):
        load_checkpoint(folder)
    with pytest.raises(CheckpointError, match="is a directory"):
        save_checkpoint(folder, _model())
    assert folder.is_dir() and not list(folder.iterdir()) and not _leftovers(tmp_path)


def test_a_symlink_where_the_file_is_expected_is_refused_on_load_and_on_save(tmp_path, good):
    link = tmp_path / "link.npz"
    os.symlink(good, link)
    before = good.read_bytes()
    with pytest.raises(CheckpointError, match="is a symbolic link"):
        load_checkpoint(link)
    with pytest.raises(CheckpointError, match="is a symbolic link"):
        save_checkpoint(link, _model())
    assert good.read_bytes() == before and link.is_symlink() and not _leftovers(tmp_path)


def test_a_failed_save_leaves_the_previous_file_and_no_partial_file(tmp_path, good, monkeypatch):
    before = good.read_bytes()

    def broken_savez(file, **arrays):
        file.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(good, _model())
    assert good.read_bytes() == before and not _leftovers(tmp_path)
    monkeypatch.undo()
    assert load_checkpoint(good).model.config["cell"] == "gru"
