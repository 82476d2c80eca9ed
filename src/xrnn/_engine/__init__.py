"""The engine: the one time loop (:mod:`.scan`) and the backend seam (:mod:`.ops`)."""

from .ops import Ops, ops_for
from .scan import ScanCache, Weights, scan, scan_backward

__all__ = ["Ops", "ScanCache", "Weights", "ops_for", "scan", "scan_backward"]
