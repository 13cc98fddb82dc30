"""Helpers for pli's tests (importable as ``plitest``: tests/ is on pytest's pythonpath)."""
