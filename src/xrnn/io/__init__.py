"""Checkpoints: the file format, a safe reader, an atomic writer and the checks between them.

:mod:`.checkpoint` has :func:`save_checkpoint` and :func:`load_checkpoint` (its docstring
describes the format); :mod:`.npz_reader` reads an archive without trusting it;
:mod:`.atomic_write` replaces a file atomically; :mod:`.checks` holds what a checkpoint
must satisfy. :mod:`.onnx_export`, :mod:`.onnx_import` (over :mod:`.onnx_graph`) and
:mod:`.keras` exchange models with ONNX and Keras, sharing :mod:`.exchange`. May import
:mod:`xrnn.training` (optimiser states), :mod:`xrnn.nn` and everything below.
"""

from .checkpoint import FORMAT, VERSION, Checkpoint, CheckpointError, load_checkpoint, save_checkpoint

__all__ = ["FORMAT", "VERSION", "Checkpoint", "CheckpointError", "load_checkpoint", "save_checkpoint"]
