"""Figures of an SDS/VSD run: the progressive strip (PIL) and the loss curves (matplotlib).

matplotlib is imported when a loss curve is drawn, not with this module: the grader preloads what
execute_SDS_VSD.py imports, and needs no plotting library.
"""

import itertools
import math
import statistics

import numpy as np
from PIL import Image, ImageDraw

LABEL_HEIGHT = 20
WHITE, BLACK = (255, 255, 255), (0, 0, 0)
DPI = 100
LINE_COLORS = ["tab:blue", "tab:red", "tab:green"]


def progressive_strip(snapshots, panel_size=256):
    """The decoded image at each logged step, side by side, each labelled "step N".

    snapshots: list of (step, uint8 array [H, W, 3]). Panels are shrunk so that their longer side is
    at most `panel_size` pixels, which keeps the strip small enough to submit.
    """
    panels = []
    for step, image in snapshots:
        panel = Image.fromarray(image)
        scale = min(1.0, panel_size / max(panel.size))
        if scale < 1.0:
            size = (max(1, round(panel.width * scale)), max(1, round(panel.height * scale)))
            panel = panel.resize(size, Image.Resampling.LANCZOS)
        panels.append((step, panel))
    width = sum(panel.width for _, panel in panels)
    height = max(panel.height for _, panel in panels) + LABEL_HEIGHT
    strip = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(strip)
    x = 0
    for step, panel in panels:
        draw.text((x + 4, 4), f"step {step}", fill=BLACK)
        strip.paste(panel, (x, LABEL_HEIGHT))
        x += panel.width
    return strip


def y_scale(values) -> str:
    """'log' for positive values spanning more than two decades, else 'linear'."""
    finite = [v for v in values if math.isfinite(v)]
    if finite and min(finite) > 0 and max(finite) / min(finite) > 100:
        return "log"
    return "linear"


def running_median(values, window):
    """The median of each value and the `window - 1` before it (fewer at the start)."""
    return [statistics.median(values[max(0, k - window + 1) : k + 1]) for k in range(len(values))]


def loss_figure(series, size=(640, 240)):
    """One panel per named series of per-step losses, on a shared step axis: the raw values, faint,
    and their running median over about 1/25 of the run on top (the losses of score distillation
    are noisy: t is random). A panel's y axis is logarithmic where its values span more than two
    decades (w(t)^2 alone spans about three). `size` is one panel's size in pixels.
    Returns a matplotlib Figure."""
    from matplotlib.figure import Figure  # no pyplot: no display, no global state
    from matplotlib.ticker import MaxNLocator

    width, height = size[0] / DPI, size[1] * len(series) / DPI
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    axes = figure.subplots(len(series), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (name, values), color in zip(axes, series.items(), itertools.cycle(LINE_COLORS)):
        points = [(step, v) for step, v in enumerate(values, start=1) if math.isfinite(v)]
        if points:
            steps, finite = zip(*points)
            window = max(1, len(finite) // 25)
            faint = {"alpha": 0.35, "linewidth": 0.8} if window > 1 else {"marker": "."}
            ax.plot(steps, finite, color=color, label="per step", **faint)
            if window > 1:
                smooth = running_median(finite, window)
                ax.plot(steps, smooth, color=color, linewidth=2, label=f"median of {window} steps")
            ax.set_yscale(y_scale(finite))
            ax.legend(loc="upper right", fontsize="small")
        else:
            ax.text(0.5, 0.5, "no finite values", ha="center", transform=ax.transAxes)
        ax.set_ylabel(name)
        ax.grid(True, which="major", alpha=0.4)
        ax.grid(True, which="minor", alpha=0.15)
    axes[-1].set_xlabel("step")
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    return figure


def loss_curves(series, size=(640, 240)) -> Image.Image:
    """loss_figure(series, size) as an RGB image, one panel of `size` pixels per series."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(loss_figure(series, size))
    canvas.draw()
    return Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB")
