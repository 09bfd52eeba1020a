"""Headless matplotlib for every plot Nudge draws: one figure style, PNG out as a file or as bytes.

The domains' plots (``ml.plots``, ``experiments.plots``) and the demo's report build on these, so the backend
is chosen once and every figure is freed once written.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: files only, on servers and in CI

from matplotlib import pyplot as plt
from matplotlib.figure import Figure


def new_figure(width: float = 7.0, height: float = 4.5) -> Figure:
    return plt.figure(figsize=(width, height), dpi=110, layout="constrained")


def png_bytes(figure: Figure) -> bytes:
    """``figure`` as PNG bytes; the figure is freed."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def save_png(figure: Figure, path: Path) -> Path:
    """Write ``figure`` to ``path`` as PNG (its directory is created) and free it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(figure))
    return path
