"""The engine: the one time loop (:mod:`.scan`) and the backend seam (:mod:`.ops`).

Nothing is re-exported here, so that ``xrnn._engine.scan`` is always the module.
"""
