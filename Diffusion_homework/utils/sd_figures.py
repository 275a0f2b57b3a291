"""Figures of an SDS/VSD run, drawn with PIL: the progressive strip and the loss curve."""

import math

from PIL import Image, ImageDraw

LABEL_HEIGHT = 20
WHITE, BLACK, GREY = (255, 255, 255), (0, 0, 0), (200, 200, 200)
SERIES_COLORS = [(31, 119, 180), (214, 39, 40), (44, 160, 44)]


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


def loss_curves(series, size=(640, 240)):
    """One panel per named series of per-step losses, stacked vertically, with a light moving
    average on top of the raw values (the losses of score distillation are noisy: t is random)."""
    panel_w, panel_h = size
    figure = Image.new("RGB", (panel_w, panel_h * len(series)), WHITE)
    draw = ImageDraw.Draw(figure)
    for row, (name, values) in enumerate(series.items()):
        top = row * panel_h
        left, right, bottom = 60, panel_w - 10, top + panel_h - 25
        plot_top = top + 20
        color = SERIES_COLORS[row % len(SERIES_COLORS)]
        draw.text((left, top + 4), name, fill=BLACK)
        draw.rectangle((left, plot_top, right, bottom), outline=BLACK)
        points = [(i, v) for i, v in enumerate(values) if math.isfinite(v)]
        if not points:
            continue
        low, high = min(v for _, v in points), max(v for _, v in points)
        span = (high - low) or 1.0
        draw.text((4, plot_top), f"{high:.3g}", fill=BLACK)
        draw.text((4, bottom - 10), f"{low:.3g}", fill=BLACK)
        draw.text((left, bottom + 6), "step 1", fill=BLACK)
        draw.text((right - 60, bottom + 6), f"step {len(values)}", fill=BLACK)
        x_scale = (right - left) / max(1, len(values) - 1)
        y_scale = (bottom - plot_top) / span

        def xy(i, v, left=left, bottom=bottom, low=low, x_scale=x_scale, y_scale=y_scale):
            return (left + i * x_scale, bottom - (v - low) * y_scale)

        window = max(1, len(points) // 25)
        smooth = []
        for k, (i, _) in enumerate(points):
            chunk = [v for _, v in points[max(0, k - window + 1) : k + 1]]
            smooth.append(xy(i, sum(chunk) / len(chunk)))
        if len(points) > 1:
            draw.line([xy(i, v) for i, v in points], fill=GREY, width=1)
            draw.line(smooth, fill=color, width=2)
    return figure
