"""Checkpoints under attack: nothing a file holds is executed, a hostile file is refused
cheaply, nothing half-written is left, and saving keeps what the user set."""

from __future__ import annotations

import functools
import io
import json
import os
import pathlib
import re
import signal
import stat
import struct
import subprocess
import sys
import zipfile
import zlib
from typing import NamedTuple

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


# ------------------------------------------------------------------ hostile files, refused cheaply
#
# Each file below is loaded in a child process whose address space is capped at 1 GiB
# and whose CPU time at 5 s: the refusal must come as a CheckpointError within both,
# and `python -m xrnn sample` must report it in one line.

posix = pytest.mark.skipif(os.name != "posix", reason="resource limits, signals and modes of POSIX")
MEMORY_LIMIT = 1 << 30
SECONDS = 5
SRC = str(pathlib.Path(xrnn.__file__).resolve().parents[1])

LIMITS = f"""
import resource
resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_LIMIT}, {MEMORY_LIMIT}))
resource.setrlimit(resource.RLIMIT_CPU, ({SECONDS}, {SECONDS}))
"""

LOAD_IN_A_CHILD = (
    LIMITS
    + """
import json, sys, time
import xrnn
start = time.perf_counter()
try:
    xrnn.load_checkpoint(sys.argv[1])
    outcome = ["loaded", ""]
except BaseException as exc:
    outcome = [type(exc).__name__, str(exc)]
print(json.dumps(outcome + [time.perf_counter() - start]))
"""
)

SAMPLE_IN_A_CHILD = (
    LIMITS
    + """
import runpy, sys
sys.argv = ["xrnn", "sample", sys.argv[1]]
runpy.run_module("xrnn", run_name="__main__", alter_sys=True)
"""
)


def _child(script, *args, timeout=30):
    """Run ``script`` in a fresh interpreter that imports this xrnn, with one BLAS thread."""
    env = os.environ | {
        "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "XRNN_BACKEND": "numpy",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    return subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


class Member(NamedTuple):
    """One zip member as it lies in the file: what it claims about itself is up to the test."""

    name: str
    data: bytes
    method: int = zipfile.ZIP_STORED
    crc: int | None = None
    size: int | None = None


def _write_zip(path, members):
    """A zip archive written byte by byte, so that a member's sizes can be anything."""
    body, directory = bytearray(), bytearray()
    for m in members:
        name = m.name.encode()
        crc = zlib.crc32(m.data) if m.crc is None else m.crc
        size = len(m.data) if m.size is None else m.size
        fields = (m.method, 0, 0x21, crc, len(m.data), size, len(name))
        directory += (
            struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, *fields, 0, 0, 0, 0, 0, len(body)) + name
        )
        body += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, *fields, 0) + name + m.data
    end = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(directory), len(body), 0
    )
    path.write_bytes(bytes(body + directory + end))


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _npy_header(shape, descr="<f4"):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


BOMB_BYTES = 3 << 30  # what the bomb's member inflates to: 3 GiB of zeros


@functools.cache
def _bomb():
    """A deflated member of a few megabytes that inflates to a 3 GiB float32 array of zeros.

    A full flush makes each chunk independent of what came before, so one compressed
    MiB of zeros repeated is a valid stream; its CRC is computed, so the member is sound.
    """
    head = _npy_header((BOMB_BYTES // 4,))
    zeros = bytes(1 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = deflate.compress(head) + deflate.flush(zlib.Z_FULL_FLUSH)
    chunk = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    finish = deflate.flush()
    crc = zlib.crc32(head)
    for _ in range(BOMB_BYTES >> 20):
        crc = zlib.crc32(zeros, crc)
    data = start + chunk * (BOMB_BYTES >> 20) + finish
    return Member("param/head.weight.npy", data, zipfile.ZIP_DEFLATED, crc, len(head) + BOMB_BYTES)


def _good_members(good):
    with zipfile.ZipFile(good) as archive:
        return {info.filename: Member(info.filename, archive.read(info)) for info in archive.infolist()}


def _header_text(good):
    with np.load(good) as f:
        return f["header"].tobytes().decode()


def _replace(good, path, member):
    """Write ``good``'s members to ``path``, with ``member`` in place of the one of its name."""
    members = _good_members(good) | {member.name: member}
    _write_zip(path, list(members.values()))


def _with_header(raw):
    def make(good, path):
        header = np.frombuffer(raw(_header_text(good)), dtype=np.uint8)
        _replace(good, path, Member("header.npy", _npy(header)))

    return make


def _with_config(**config):
    def edit(text):
        header = json.loads(text)
        header["model"].update(config)
        return json.dumps(header).encode()

    return _with_header(edit)


def _zip_bomb(good, path):
    _replace(good, path, _bomb())


def _npy_of_2_40_elements(good, path):
    _replace(good, path, Member("param/head.bias.npy", _npy_header((2**40,)) + bytes(4)))


def _text_model_with_a_lone_surrogate(good, path):
    """A text model whose vocabulary holds an unpaired surrogate (JSON can escape one: ``\\ud800``)."""
    save_checkpoint(
        path, xrnn.SequenceModel("gru", 2, 3, 2, xp="numpy"), metadata={"task": "text", "vocab": "ab"}
    )
    _with_header(lambda text: text.replace('"ab"', '"\\ud800b"').encode())(path, path)


#: case: (how to make it from a good checkpoint, pattern of the CheckpointError)
HOSTILE = {
    "zip_bomb": (_zip_bomb, r"would inflate to 3\.0 GiB from a file of [0-9.]+ MiB"),
    "npy_declares_2**40_elements": (
        _npy_of_2_40_elements,
        r"member 'param/head.bias' declares shape \(1099511627776,\) of float32 \(4\.0 TiB\) "
        "but holds 4 bytes",
    ),
    "json_nested_100000_deep": (
        _with_header(lambda text: b"[" * 100_000 + b"]" * 100_000),
        "the header is not valid JSON: nested too deeply",
    ),
    "json_5000_digit_integer": (
        _with_header(lambda text: text.replace('"hidden_size": 3', '"hidden_size": ' + "9" * 5000).encode()),
        "the header is not valid JSON: an integer of 5000 digits",
    ),
    "hidden_size_20000": (
        _with_config(hidden_size=20_000),
        "the header says hidden_size 20000 but its arrays have hidden_size 3",
    ),
    "num_layers_200000": (
        _with_config(num_layers=200_000),
        "the header says num_layers 200000 but its arrays have num_layers 1",
    ),
    "a_named_pipe": (lambda good, path: os.mkfifo(path), "is not a regular file; a checkpoint must be one"),
    "header_in_utf16": (
        _with_header(lambda text: text.encode("utf-16")),
        "the header is not UTF-8 text",
    ),
    "header_with_a_lone_surrogate": (
        _text_model_with_a_lone_surrogate,
        r"the header holds text that is not valid Unicode \(an unpaired surrogate",
    ),
}


@pytest.fixture(params=list(HOSTILE))
def hostile(request, tmp_path, good):
    make, pattern = HOSTILE[request.param]
    path = tmp_path / "hostile.npz"
    make(good, path)
    assert path.stat().st_size < 8 << 20  # each attack is a small file
    return path, pattern


@posix
def test_a_hostile_checkpoint_is_refused_cheaply(hostile):
    path, pattern = hostile
    done = _child(LOAD_IN_A_CHILD, path)
    assert done.returncode == 0, f"the child ended with {done.returncode}: {done.stderr[-2000:]}"
    kind, message, seconds = json.loads(done.stdout)
    assert kind == "CheckpointError", (kind, message)
    assert re.search(pattern, message), message
    assert seconds < SECONDS


@posix
def test_sample_on_a_hostile_checkpoint_prints_one_line(hostile):
    path, _ = hostile
    done = _child(SAMPLE_IN_A_CHILD, path)
    assert (done.returncode, done.stdout) == (1, ""), done.stderr[-2000:]
    assert done.stderr.startswith("xrnn sample: error: ") and done.stderr.count("\n") == 1, done.stderr[
        -2000:
    ]


def test_the_bomb_is_a_sound_archive_of_3_gib(tmp_path, good):
    """The zip bomb is a valid archive: its member really inflates to what it declares."""
    path = tmp_path / "bomb.npz"
    _zip_bomb(good, path)
    with zipfile.ZipFile(path) as archive, archive.open("param/head.weight.npy") as member:
        head = _npy_header((BOMB_BYTES // 4,))
        assert archive.getinfo("param/head.weight.npy").file_size == len(head) + BOMB_BYTES
        assert np.lib.format.read_magic(member) == (1, 0)
        assert np.lib.format.read_array_header_1_0(member)[0] == (BOMB_BYTES // 4,)


# ------------------------------------------------------------------------ saving keeps what the user set

KEPT_MODES = {"owner_only_0600": 0o600, "group_reads_0640": 0o640, "group_writes_0660": 0o660, "0604": 0o604}


@posix
@pytest.mark.parametrize("case", list(KEPT_MODES))
def test_saving_over_a_checkpoint_keeps_its_permission_bits_from_the_first_byte(
    tmp_path, good, case, monkeypatch
):
    mode = KEPT_MODES[case]
    os.chmod(good, mode)
    modes_while_writing = []
    savez = np.savez

    def recording_savez(file, **arrays):
        modes_while_writing.append(stat.S_IMODE(os.fstat(file.fileno()).st_mode))
        savez(file, **arrays)

    monkeypatch.setattr(xrnn.io.checkpoint.np, "savez", recording_savez)
    save_checkpoint(good, xrnn.SequenceModel("rnn", 2, 3, 1, xp="numpy", seed=0))
    assert modes_while_writing == [mode]  # the temporary file is never more open than the target
    assert stat.S_IMODE(good.stat().st_mode) == mode
    assert load_checkpoint(good).model.config["cell"] == "rnn" and not _leftovers(tmp_path)


REFUSE_AS_NOBODY = """
import json, os, sys
import xrnn
os.chdir(sys.argv[1])  # relative paths from here: nobody may not traverse the folders above
model = xrnn.SequenceModel("rnn", 2, 3, 1, xp="numpy", seed=0)
xrnn.save_checkpoint("warm-up.npz", model)  # imports everything while still root
os.remove("warm-up.npz")
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
facts = [os.access("good.npz", os.W_OK), os.access(".", os.W_OK)]
try:
    xrnn.save_checkpoint("good.npz", model)
    outcome = ["replaced", ""]
except BaseException as exc:
    outcome = [type(exc).__name__, str(exc)]
print(json.dumps(facts + outcome))
"""


@posix
def test_a_file_the_user_may_not_write_is_not_replaced(tmp_path, good):
    """``os.replace`` needs only the folder to be writable, so this is refused by a check.

    Root may write any file, so as root the save runs in a child that becomes ``nobody``
    (uid 65534) in a folder it owns, over ``good.npz`` owned by root with mode 0644; as
    another user the file is made read-only, and the test is skipped if that user may
    write it anyway.
    """
    before = good.read_bytes()
    if os.geteuid() == 0:
        os.chown(tmp_path, 65534, 65534)
        done = _child(REFUSE_AS_NOBODY, tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        may_write_file, may_write_folder, kind, message = json.loads(done.stdout)
        assert (may_write_file, may_write_folder) == (False, True)
    else:
        os.chmod(good, 0o444)
        if os.access(good, os.W_OK):
            pytest.skip("this user may write a read-only file (e.g. CAP_DAC_OVERRIDE)")
        with pytest.raises(PermissionError) as raised:
            save_checkpoint(good, xrnn.SequenceModel("rnn", 2, 3, 1, xp="numpy", seed=0))
        kind, message = "PermissionError", str(raised.value)
    assert kind == "PermissionError" and "this user may not write it; it is not replaced" in message
    assert good.read_bytes() == before and not _leftovers(tmp_path)


SAVE_SLOWLY = """
import signal, sys, threading, time
import numpy as np
import xrnn

path, how = sys.argv[1], sys.argv[2]
savez = np.savez


def slow_savez(file, **arrays):
    file.write(b"PK\\x03\\x04 the first bytes of the archive")
    file.flush()
    print("writing", flush=True)
    time.sleep(3)
    savez(file, **arrays)


np.savez = slow_savez
if how == "handler_that_exits":
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(3))
elif how == "ignored":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
model = xrnn.SequenceModel("rnn", 2, 3, 1, xp="numpy", seed=0)
if how == "worker_thread":
    worker = threading.Thread(target=xrnn.save_checkpoint, args=(path, model))
    worker.start()
    worker.join()
else:
    xrnn.save_checkpoint(path, model)
"""

#: The temporary file that only SIGKILL, or SIGTERM in another thread, can leave behind.
LEFT = r"\.good\.npz\.[0-9a-f]{16}\.tmp"

#: case: (the child's SIGTERM setting, signal sent mid-write, exit status, temporary file
#: left (pattern) or None, cell of the checkpoint afterwards: gru the old one, rnn the new)
SIGNALS = {
    "sigterm": ("default", signal.SIGTERM, -signal.SIGTERM, None, "gru"),
    "sigterm_with_a_handler_that_exits": ("handler_that_exits", signal.SIGTERM, 3, None, "gru"),
    "sigterm_ignored": ("ignored", signal.SIGTERM, 0, None, "rnn"),
    "sigterm_in_a_worker_thread": ("worker_thread", signal.SIGTERM, -signal.SIGTERM, LEFT, "gru"),
    "sigkill": ("default", getattr(signal, "SIGKILL", 9), -getattr(signal, "SIGKILL", 9), LEFT, "gru"),
}


@posix
@pytest.mark.parametrize("case", list(SIGNALS))
def test_a_signal_mid_write_leaves_the_old_file_and_no_temporary_file(tmp_path, good, case):
    how, signum, status, left, cell = SIGNALS[case]
    env = os.environ | {"PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen(
        [sys.executable, "-c", SAVE_SLOWLY, str(good), how],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout.readline() == "writing\n"
        assert _leftovers(tmp_path)  # the signal comes while the temporary file is being written
        child.send_signal(signum)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == status and "Traceback" not in err, err
    leftovers = _leftovers(tmp_path)
    assert leftovers == [] if left is None else len(leftovers) == 1 and re.fullmatch(left, leftovers[0])
    assert load_checkpoint(good).model.config["cell"] == cell


@pytest.mark.parametrize(
    "handler",
    [signal.SIG_DFL, signal.SIG_IGN, lambda signum, frame: None],
    ids=["default", "ignored", "own_handler"],
)
@posix
def test_saving_leaves_the_sigterm_handler_as_it_was(tmp_path, handler):
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        save_checkpoint(tmp_path / "m.npz", _model())
        assert signal.getsignal(signal.SIGTERM) is handler
    finally:
        signal.signal(signal.SIGTERM, previous)
