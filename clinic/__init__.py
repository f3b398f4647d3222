"""The clinic: the pages that combine every stage (worklist, study page, slice viewer, hospital dashboard),
and ``clinic.pipeline``, the one module that hands a series from stage to stage.

This app sits above ``accounts`` ← ``scans`` ← ``ml`` ← ``reports``: it may import all of them, and none
of them imports it (import-linter contracts in ``pyproject.toml``).
"""
