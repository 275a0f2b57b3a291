"""training_curves.png: drawn from stats.jsonl at every tick of a run, never a reason to stop."""

import dataclasses
import hashlib
import json

import pytest
from click.testing import CliRunner
from gan_helpers import R1, TRAINING, only_run_dir, tiny_args
from PIL import Image

from training import training_loop
from training.config import CONFIGS
from training.plots import (
    CURVES_NAME,
    draw_training_curves,
    read_kid,
    read_stats,
    training_figure,
)


def invoke(args):
    from train import main

    return CliRunner().invoke(main, list(map(str, args)), catch_exceptions=False)


def tick_every_iteration(monkeypatch):
    monkeypatch.setitem(CONFIGS, "tiny", dataclasses.replace(CONFIGS["tiny"], tick_iters=1))


def record(iteration, batch=4, s_per_iter=0.5, **losses):
    return {
        "iteration": iteration,
        "kimg": iteration * batch / 1000,
        "s_per_iter": s_per_iter,
        "s_per_kimg": s_per_iter * 1000 / batch,
        "peak_gpu_mem_gb": None,
        "time": 0.0,
        "losses": {f"Loss/{k.replace('__', '/')}": v for k, v in losses.items()},
    }


def write_stats(path, records, extra_lines=()):
    lines = [json.dumps(r) for r in records] + list(extra_lines)
    path.write_text("".join(line + "\n" for line in lines))
    return path


@pytest.mark.needs(*TRAINING, R1)
def test_training_curves_are_redrawn_at_every_tick(tmp_path, tiny_data, monkeypatch):
    tick_every_iteration(monkeypatch)
    draws = []

    def spy(stats_path, png_path):
        assert draw_training_curves(stats_path, png_path)
        png = png_path.read_bytes()
        draws.append((read_stats(stats_path)[-1]["iteration"], hashlib.sha256(png).hexdigest()))

    monkeypatch.setattr(training_loop, "draw_training_curves", spy)
    result = invoke(tiny_args(tmp_path / "runs", tiny_data, True, False, 2, 2))
    assert result.exit_code == 0, result.output
    assert [iteration for iteration, _ in draws] == [1, 2], "one drawing per tick"
    assert draws[0][1] != draws[1][1], "the second tick's drawing is a new picture"
    run = only_run_dir(tmp_path / "runs")
    with Image.open(run / CURVES_NAME) as image:
        assert image.format == "PNG" and image.size == (1000, 700)
        image.verify()
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")], "no temporary files"


@pytest.mark.needs(*TRAINING)
def test_a_plotting_error_is_one_logged_line_and_training_goes_on(tmp_path, tiny_data, monkeypatch):
    tick_every_iteration(monkeypatch)

    def broken(stats_path, png_path):
        raise RuntimeError("no usable font\nsecond line of the reason")

    monkeypatch.setattr(training_loop, "draw_training_curves", broken)
    result = invoke(tiny_args(tmp_path / "runs", tiny_data, False, False, 2, 2))
    assert result.exit_code == 0, result.output
    run = only_run_dir(tmp_path / "runs")
    warnings = [line for line in (run / "log.txt").read_text().splitlines() if CURVES_NAME in line]
    assert warnings == [
        f"warning: {CURVES_NAME} not redrawn (no usable font); training goes on."
    ], "the same failure at the second tick is not repeated"
    assert (run / "checkpoint-000002.pt").exists()


def test_panels_show_losses_scores_regularization_and_speed(tmp_path):
    records = [
        record(50, s_per_iter=3.0, G__loss=1.2, D__loss=1.3, scores__real=0.4, scores__fake=-0.2,
               D__reg=0.002, G__reg=0.05),
        record(100, s_per_iter=0.9, G__loss=1.0, D__loss=1.1, scores__real=0.6, scores__fake=-0.4,
               D__reg=0.9, G__reg=0.04),
    ]  # fmt: skip
    figure = training_figure(records, "00000-dogs-low_shot-r1-noaug")
    losses, scores, regularization, speed = figure.axes[:4]
    legend = [[t.get_text() for t in ax.get_legend().get_texts()] for ax in figure.axes[:3]]
    assert legend == [["G", "D (real + fake)"], ["real images D(x)", "generated D(G(z))"],
                      ["R1, Eq. (3)", "path length"]]  # fmt: skip
    assert list(scores.get_lines()[0].get_ydata()) == [0.4, 0.6]
    assert regularization.get_yscale() == "log", "0.002 to 0.9 spans more than two decades"
    assert losses.get_yscale() == "linear"
    assert list(speed.get_lines()[0].get_ydata()) == [3.0, 0.9]
    assert speed.get_ylabel() == "seconds per iteration"
    assert [ax.get_xlabel() for ax in (regularization, speed)] == ["iteration", "iteration"]
    assert all(any(g.get_visible() for g in ax.get_ygridlines()) for ax in figure.axes[:4])


def test_a_run_without_r1_says_so_instead_of_an_empty_panel():
    figure = training_figure([record(5, G__loss=1.0, G__reg=0.1)], "run")
    regularization = figure.axes[2]
    assert [line.get_label() for line in regularization.get_lines()] == ["path length"]
    scores = figure.axes[1]
    assert not scores.get_lines() and scores.texts[0].get_text() == "not logged in this run"


def test_stats_of_a_resumed_run_and_broken_lines(tmp_path):
    stats = write_stats(
        tmp_path / "stats.jsonl",
        [record(5, G__loss=1.0), record(10, G__loss=2.0), record(5, G__loss=3.0)],
        extra_lines=['{"iteration": 15, "losses"'],  # a line cut short by a crash of an old run
    )
    assert [(r["iteration"], r["losses"]["Loss/G/loss"]) for r in read_stats(stats)] == [
        (5, 3.0),
        (10, 2.0),
    ], "in order of iteration, the later record of an iteration logged twice"


def test_nothing_is_drawn_before_the_first_tick(tmp_path):
    stats = tmp_path / "stats.jsonl"
    stats.write_text("")
    assert draw_training_curves(stats, tmp_path / CURVES_NAME) is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stats.jsonl"]


def test_kid_of_metrics_jsonl_is_drawn_on_the_scores_panel_when_it_exists(tmp_path):
    stats = write_stats(tmp_path / "stats.jsonl", [record(2, scores__real=0.4), record(4)])
    png = tmp_path / CURVES_NAME
    assert draw_training_curves(stats, png)
    without_kid = png.read_bytes()
    kid_lines = [
        {"metric": "kid", "value": 0.30, "num_gen": 1000, "num_real": 8, "iteration": 2},
        {"metric": "fid", "value": 90.0, "num_gen": 5000, "num_real": 8, "iteration": 4},
        {"metric": "kid", "value": 0.25, "num_gen": 1000, "num_real": 8, "iteration": 4},
        {"metric": "kid", "value": 0.20, "num_gen": 1000, "num_real": 8, "iteration": 2},
        {"metric": "kid", "value": float("nan"), "num_gen": 1000, "num_real": 8, "iteration": 6},
    ]
    (tmp_path / "metrics.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in kid_lines) + '{"metric": "kid", "val\n'
    )
    assert read_kid(tmp_path / "metrics.jsonl") == [(2, 0.20), (4, 0.25)], (
        "KID only, finite, in order of iteration, the later value of an iteration measured twice"
    )
    assert draw_training_curves(stats, png)
    assert png.read_bytes() != without_kid, "KID is part of the picture"
    with Image.open(png) as image:
        assert image.size == (1000, 700)

    figure = training_figure(read_stats(stats), "run", read_kid(tmp_path / "metrics.jsonl"))
    scores = figure.axes[1]
    (kid_axis,) = [ax for ax in figure.axes if ax.get_label() == "KID"]
    assert kid_axis.get_position().bounds == scores.get_position().bounds, "its twin axis"
    assert list(kid_axis.get_lines()[0].get_ydata()) == [0.20, 0.25]
    legend = [t.get_text() for t in scores.get_legend().get_texts()]
    assert legend == ["real images D(x)", "KID (right axis)"]
    assert read_kid(tmp_path / "absent.jsonl") == []
