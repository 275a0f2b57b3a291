"""Grading tests for the DDIM scheduler (Part B, Sec. 5): TODO #1 and #2 of scheduler/DDIM_scheduler.py.

The oracle is diffusers' own DDIMScheduler (same config, same timesteps):
- #1 (predicted x_0, Eqs. (9)-(10)) through the returned pred_original_sample;
- #2 (Eq. (9)) through prev_sample, checked against the x_0 that the step itself returned (so a
  wrong #1 does not cost #2's points), with eta = 0 and eta > 0 (the same variance_noise).
Schedules: all 1000 steps, and 50 strided steps with 'leading' and 'trailing' spacing; the last
step has alpha-bar_(t-1) = 1 (set_alpha_to_one) or alpha-bar_0.
TODO #3 (DPS) is tested in test_dps.py.
"""

import pytest
import torch
from diffusers import DDIMScheduler as OracleDDIM

from scheduler.DDIM_scheduler import DDIMScheduler

TODO1 = "Diffusion_homework/scheduler/DDIM_scheduler.py#1"
TODO2 = "Diffusion_homework/scheduler/DDIM_scheduler.py#2"

CONFIG = dict(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear")
SHAPES = [(1, 3, 8, 8), (3, 3, 6, 10)]  # batch 1; odd batch with non-square images


def make(num_steps, spacing="leading", clip=True, alpha_to_one=True):
    options = dict(timestep_spacing=spacing, clip_sample=clip, set_alpha_to_one=alpha_to_one)
    ours, oracle = DDIMScheduler(**CONFIG, **options), OracleDDIM(**CONFIG, **options)
    ours.set_timesteps(num_steps)
    oracle.set_timesteps(num_steps)
    assert ours.timesteps.tolist() == oracle.timesteps.tolist()
    return ours, oracle


def inputs(shape, t, seed=0):
    """x_t, a model output eps and a variance noise, all N(0, I)-like."""
    g = torch.Generator().manual_seed(seed * 1000 + t)
    return (
        1.5 * torch.randn(shape, generator=g),
        torch.randn(shape, generator=g),
        torch.randn(shape, generator=g),
    )


def step(scheduler, eps, t, x, **kwargs):
    """One step; fails if the step changed its inputs in place."""
    eps_copy, x_copy = eps.clone(), x.clone()
    out = scheduler.step(eps, t, x, **kwargs)
    assert torch.equal(x, x_copy) and torch.equal(eps, eps_copy), (
        "step() changed `sample` or `model_output` in place; compute new tensors instead"
    )
    assert out.prev_sample.shape == x.shape and out.pred_original_sample.shape == x.shape, (
        f"prev_sample / pred_original_sample must keep the shape {tuple(x.shape)} of sample"
    )
    return out


def assert_close(actual, expected, message, rtol=1e-4):
    atol = 1e-5 * (1 + float(expected.abs().max()))
    if not torch.allclose(actual, expected, rtol=rtol, atol=atol):
        err = (actual - expected).abs().max().item()
        raise AssertionError(f"{message} (largest error {err:.3g})")


# ------------------------------------------------------------------------- TODO #1


def check_pred_original_sample(num_steps, spacing, clip, shape):
    ours, oracle = make(num_steps, spacing, clip)
    for t in ours.timesteps.tolist():
        x, eps, _ = inputs(shape, t)
        got = step(ours, eps, t, x).pred_original_sample
        assert_close(
            got,
            oracle.step(eps, t, x).pred_original_sample,
            f"{num_steps} steps ({spacing}), t={t}, clip_sample={clip}: pred_original_sample "
            f"should be (x_t - sqrt(beta-bar_t) * eps) / sqrt(alpha-bar_t) with beta-bar_t = "
            f"1 - alpha-bar_t, Eqs. (9)-(10)"
            + ("" if clip else " (do not clip it yourself: the code after TODO #1 does)"),
        )


@pytest.mark.todo(TODO1, weight=2)
@pytest.mark.parametrize("shape", SHAPES)
def test_pred_original_sample_over_all_1000_steps_without_clipping(shape):
    check_pred_original_sample(1000, "leading", False, shape)


@pytest.mark.todo(TODO1)
def test_pred_original_sample_with_clipping():
    check_pred_original_sample(1000, "leading", True, SHAPES[1])


@pytest.mark.todo(TODO1)
@pytest.mark.parametrize("spacing", ["leading", "trailing"])
def test_pred_original_sample_with_50_steps(spacing):
    check_pred_original_sample(50, spacing, False, SHAPES[1])


# ------------------------------------------------------------------------- TODO #2


def check_prev_sample(num_steps, spacing, eta, shape, clip=True, alpha_to_one=True):
    ours, oracle = make(num_steps, spacing, clip, alpha_to_one)
    stride = CONFIG["num_train_timesteps"] // num_steps
    for t in ours.timesteps.tolist():
        x, eps, variance_noise = inputs(shape, t)
        out = step(ours, eps, t, x, eta=eta, variance_noise=variance_noise)
        prev_t = t - stride
        a_prev = oracle.alphas_cumprod[prev_t] if prev_t >= 0 else oracle.final_alpha_cumprod
        sigma = eta * oracle._get_variance(t, prev_t) ** 0.5
        x0 = out.pred_original_sample
        expected = (
            a_prev.sqrt() * x0 + (1 - a_prev - sigma**2).sqrt() * eps + sigma * variance_noise
        )
        assert_close(
            out.prev_sample,
            expected,
            f"{num_steps} steps ({spacing}), t={t}, prev_t={prev_t}, eta={eta}: prev_sample "
            f"should be sqrt(alpha-bar_(t-1)) * x_0 + sqrt(1 - alpha-bar_(t-1) - sigma_t^2) * eps, "
            f"Eq. (9) (x_0 = the clipped pred_original_sample; no random-noise term: the code "
            f"after TODO #2 adds it)",
        )


@pytest.mark.todo(TODO2, weight=2)
@pytest.mark.parametrize("shape", SHAPES)
def test_prev_sample_with_50_steps_eta_0(shape):
    check_prev_sample(50, "leading", 0.0, shape)


@pytest.mark.todo(TODO2)
@pytest.mark.parametrize("eta", [0.5, 1.0])
def test_prev_sample_with_eta_above_0_uses_sigma_t(eta):
    check_prev_sample(50, "leading", eta, SHAPES[1])


@pytest.mark.todo(TODO2)
def test_prev_sample_over_all_1000_steps():
    check_prev_sample(1000, "leading", 0.0, SHAPES[1])


@pytest.mark.todo(TODO2)
@pytest.mark.parametrize("alpha_to_one", [True, False])
def test_prev_sample_with_trailing_steps_and_the_final_alpha(alpha_to_one):
    check_prev_sample(50, "trailing", 0.5, SHAPES[1], alpha_to_one=alpha_to_one)


@pytest.mark.todo(TODO2)
def test_prev_sample_without_clipping():
    check_prev_sample(50, "leading", 0.5, SHAPES[1], clip=False)
