"""PNG plots of model and plan diagnostics (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: files only, on servers and in CI

from matplotlib import pyplot as plt
from matplotlib.figure import Figure


def new_figure(width: float = 7.0, height: float = 4.5) -> Figure:
    return plt.figure(figsize=(width, height), dpi=110, layout="constrained")


def save_png(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    plt.close(figure)
    return path
