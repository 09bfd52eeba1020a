"""Nudge's front door: the ``nudge`` command."""

__version__ = "0.1.0"
