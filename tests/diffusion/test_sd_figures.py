"""utils.sd_figures: the SDS/VSD loss curves (matplotlib) and the progressive strip."""

import math

import numpy as np
import pytest

from utils.sd_figures import loss_curves, loss_figure, progressive_strip, running_median, y_scale


def noisy_losses(count, low, high, seed=0):
    """Per-step values spread log-uniformly over [low, high], like w(t)^2-weighted SDS losses."""
    rng = np.random.default_rng(seed)
    return (10 ** rng.uniform(math.log10(low), math.log10(high), count)).tolist()


def test_vsd_curves_have_one_labelled_panel_per_loss_with_the_right_scale():
    series = {"VSD loss": noisy_losses(200, 1.0, 3000.0), "LoRA loss": noisy_losses(200, 0.05, 0.3)}
    figure = loss_figure(series)
    axes = figure.axes
    assert [ax.get_ylabel() for ax in axes] == ["VSD loss", "LoRA loss"]
    assert axes[-1].get_xlabel() == "step"
    assert axes[0].get_yscale() == "log", "three decades are drawn on a log axis"
    assert axes[1].get_yscale() == "linear", "less than two decades stay linear"
    for ax in axes:
        assert any(line.get_visible() for line in ax.get_ygridlines()), "grid lines are drawn"
        raw, smooth = ax.get_lines()
        assert list(raw.get_xdata()) == list(range(1, 201)), "one point per step, from step 1"
        assert len(smooth.get_xdata()) == 200
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [
            "per step",
            "median of 8 steps",
        ]
    assert list(axes[1].get_lines()[0].get_ydata()) == series["LoRA loss"]


def test_loss_curves_is_an_rgb_image_of_one_panel_size_per_loss():
    image = loss_curves({"SDS loss": noisy_losses(50, 1, 1000)}, size=(500, 200))
    assert image.mode == "RGB" and image.size == (500, 200)
    pixels = np.asarray(image)
    assert (pixels < 128).any() and (pixels == 255).any(), "something is drawn on white"
    assert loss_curves({"a": [1.0, 2.0], "b": [3.0, 4.0]}).size == (640, 480)


@pytest.mark.parametrize(
    "values,scale",
    [
        ([1.0, 50.0], "linear"),
        ([1.0, 101.0], "log"),
        ([0.001, 2.0, float("nan"), float("inf")], "log"),
        ([-1.0, 1000.0], "linear"),  # a log axis cannot show values <= 0
        ([0.0, 1000.0], "linear"),
        ([float("nan")], "linear"),
    ],
)
def test_log_scale_only_for_positive_values_over_two_decades(values, scale):
    assert y_scale(values) == scale


def test_non_finite_losses_are_left_out_and_an_all_nan_series_still_draws():
    figure = loss_figure(
        {"SDS loss": [1.0, float("nan"), 3.0, float("inf")], "LoRA loss": [math.nan]}
    )
    sds, lora = figure.axes
    assert list(sds.get_lines()[0].get_xdata()) == [1, 3]
    assert not lora.get_lines() and lora.texts[0].get_text() == "no finite values"
    assert loss_curves({"LoRA loss": [math.nan]}).size == (640, 240)


def test_running_median_looks_back_only():
    assert running_median([5, 1, 9, 2, 7], 3) == [5, 3, 5, 2, 7]


def test_progressive_strip_places_panels_side_by_side_with_labels():
    snapshots = [(step, np.full((32, 24, 3), 40 * step, dtype=np.uint8)) for step in (0, 2, 4)]
    strip = progressive_strip(snapshots)
    assert strip.size == (3 * 24, 32 + 20)
