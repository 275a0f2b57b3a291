"""training_curves.png of a run folder: its stats.jsonl (one record per tick) as four panels.

The training loop redraws it at every tick, so it always shows the run so far: G and D losses,
the discriminator's mean scores of real and generated images, the R1 and path-length terms, and
the seconds per iteration. Where metrics.jsonl holds KID values (train.py --metrics kid, or
calc_metrics.py --network), they are drawn on the scores panel's right axis. matplotlib is imported
on the first drawing, not when training starts.
"""

import json
import math
from pathlib import Path

from outputs import atomic_write

CURVES_NAME = "training_curves.png"
METRICS_NAME = "metrics.jsonl"

# (title, y label, [(key in a record's "losses", legend label)]); keys never logged are skipped
PANELS = [
    (
        "G and D losses, Eqs. (1)-(2)",
        "loss",
        [
            ("Loss/G/loss", "G"),
            ("Loss/D/loss", "D (real + fake)"),
            ("Loss/D/loss_real", "D, real term"),
            ("Loss/D/loss_fake", "D, fake term"),
        ],
    ),
    (
        "discriminator scores",
        "mean D logit",
        [("Loss/scores/real", "real images D(x)"), ("Loss/scores/fake", "generated D(G(z))")],
    ),
    (
        "regularization terms",
        "term",
        [("Loss/D/reg", "R1, Eq. (3)"), ("Loss/G/reg", "path length")],
    ),
]


def read_stats(path) -> list[dict]:
    """The records of stats.jsonl in order of iteration; for an iteration logged twice (a run
    resumed from an earlier checkpoint), the later record. Lines that are not records are
    skipped."""
    by_iteration = {}
    for line in Path(path).read_text().splitlines():
        try:
            record = json.loads(line)
            by_iteration[int(record["iteration"])] = record
        except (ValueError, KeyError, TypeError):
            continue
    return [by_iteration[i] for i in sorted(by_iteration)]


def read_kid(path) -> list[tuple[int, float]]:
    """(iteration, KID) of metrics.jsonl in order of iteration, the later value for an iteration
    measured twice; [] when the file does not exist. Other lines are skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    by_iteration = {}
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
            if record["metric"] == "kid" and math.isfinite(record["value"]):
                by_iteration[int(record["iteration"])] = float(record["value"])
        except (ValueError, KeyError, TypeError):
            continue
    return sorted(by_iteration.items())


def y_scale(values) -> str:
    """'log' for positive values spanning more than two decades, else 'linear'."""
    finite = [v for v in values if math.isfinite(v)]
    if finite and min(finite) > 0 and max(finite) / min(finite) > 100:
        return "log"
    return "linear"


def training_figure(records: list[dict], title: str, kid_points=()):
    """The four panels of training_curves.png for per-tick records and (iteration, KID) points
    (a matplotlib Figure)."""
    from matplotlib.figure import Figure  # no pyplot: no display, no global state
    from matplotlib.ticker import MaxNLocator

    iterations = [r["iteration"] for r in records]
    figure = Figure(figsize=(10, 7), dpi=100)
    # fixed margins: a layout engine made each drawing about 1.7 times as slow
    figure.subplots_adjust(left=0.08, right=0.92, bottom=0.07, top=0.91, wspace=0.28, hspace=0.16)
    axes = figure.subplots(2, 2, sharex=True).ravel()
    for ax, (panel, label, lines) in zip(axes, PANELS):
        drawn = []
        for key, name in lines:
            # a tick without this term (R1 is computed every 16th iteration) is skipped, not a gap
            points = [(r["iteration"], r.get("losses", {}).get(key)) for r in records]
            points = [(i, float(v)) for i, v in points if v is not None and math.isfinite(v)]
            if points:
                ax.plot(*zip(*points), marker=".", label=name)
                drawn += [v for _, v in points]
        if drawn:
            ax.legend(fontsize="small")
            ax.set_yscale(y_scale(drawn))
        else:
            ax.text(0.5, 0.5, "not logged in this run", ha="center", transform=ax.transAxes)
        ax.set(title=panel, ylabel=label)

    if kid_points:
        scores = axes[1]
        kid_axis = scores.twinx()
        kid_axis.plot(*zip(*kid_points), marker="s", color="tab:red", label="KID (right axis)")
        kid_axis.set_label("KID")  # no axis title: the red ticks and the legend name it
        kid_axis.tick_params(axis="y", colors="tab:red")
        handles = scores.get_legend_handles_labels()
        kid_handles = kid_axis.get_legend_handles_labels()
        scores.legend(handles[0] + kid_handles[0], handles[1] + kid_handles[1], fontsize="small")
        scores.set_title("discriminator scores and KID")

    speed = axes[3]
    speed.plot(iterations, [r["s_per_iter"] for r in records], marker=".", color="black")
    speed.set(title="speed (a first tick includes start-up)", ylabel="seconds per iteration")
    iters_per_kimg = records[-1]["iteration"] / records[-1]["kimg"]  # 1000 / batch
    speed.secondary_yaxis(
        "right", functions=(lambda s: s * iters_per_kimg, lambda s: s / iters_per_kimg)
    ).set_ylabel("seconds per kimg")
    speed.set_ylim(bottom=0)
    for ax in axes:
        ax.grid(True, alpha=0.3)
    for ax in axes[2:]:
        ax.set_xlabel("iteration")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.suptitle(title)
    return figure


def draw_training_curves(stats_path, png_path) -> bool:
    """Draw the records of `stats_path`, and the KID values of metrics.jsonl beside it, into
    `png_path` (written atomically). Returns False, and writes nothing, while there is no record
    yet."""
    records = read_stats(stats_path)
    if not records:
        return False
    png_path = Path(png_path)
    figure = training_figure(
        records,
        f"{png_path.parent.name}: iteration {records[-1]['iteration']}",
        read_kid(Path(stats_path).with_name(METRICS_NAME)),
    )
    atomic_write(png_path, lambda f: figure.savefig(f, format="png"))
    return True
