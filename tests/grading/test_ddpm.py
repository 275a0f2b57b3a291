"""Grading tests for the DDPM scheduler (Part B, Sec. 4): TODO #1-#3 of scheduler/DDPM_scheduler.py.

The oracle is diffusers' own DDPMScheduler (same config, same timesteps). Each TODO is read
through what only it decides, as far as step() allows:
- #1 (the alphas and betas) through the noise level sigma of Eq. (2), which the provided code
  after TODO #3 computes from TODO #1's names alone: two runs that differ only in the seed of
  the noise z differ by sigma * (z_a - z_b);
- #2 (Eq. (1)) through the returned pred_original_sample;
- #3 (Eq. (2)) through prev_sample, checked against the x_0 that the step itself returned, so a
  wrong #2 does not cost #3's points.
Schedules: all 1000 training steps, and 50 strided steps with 'leading' and 'trailing' spacing
(the last step has prev_t = -1; the 1000-step schedule passes prev_t = 0 at t = 1).
"""

import pytest
import torch
from diffusers import DDPMScheduler as OracleDDPM
from diffusers.utils.torch_utils import randn_tensor

from scheduler.DDPM_scheduler import DDPMScheduler

TODO1 = "Diffusion_homework/scheduler/DDPM_scheduler.py#1"
TODO2 = "Diffusion_homework/scheduler/DDPM_scheduler.py#2"
TODO3 = "Diffusion_homework/scheduler/DDPM_scheduler.py#3"

# google/ddpm-celebahq-256's scheduler.
CONFIG = dict(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear")
SCHEDULES = [(1000, "leading"), (50, "leading"), (50, "trailing")]
SHAPES = [(1, 3, 8, 8), (3, 3, 6, 10)]  # batch 1; odd batch with non-square images


def make(num_steps, spacing, clip=True):
    ours = DDPMScheduler(**CONFIG, timestep_spacing=spacing, clip_sample=clip)
    oracle = OracleDDPM(**CONFIG, timestep_spacing=spacing, clip_sample=clip)
    ours.set_timesteps(num_steps)
    oracle.set_timesteps(num_steps)
    assert ours.timesteps.tolist() == oracle.timesteps.tolist()
    return ours, oracle


def inputs(shape, t, seed=0):
    """x_t as the forward process would make it at t, and a model output eps ~ N(0, I)."""
    g = torch.Generator().manual_seed(seed * 1000 + t)
    return 1.5 * torch.randn(shape, generator=g), torch.randn(shape, generator=g)


def noise(shape, seed):
    return randn_tensor(shape, generator=torch.Generator().manual_seed(seed))


def step(scheduler, eps, t, x, seed):
    """One step; fails if the step changed its inputs in place."""
    eps_copy, x_copy = eps.clone(), x.clone()
    out = scheduler.step(eps, t, x, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(x, x_copy) and torch.equal(eps, eps_copy), (
        "step() changed `sample` or `model_output` in place; compute new tensors instead"
    )
    assert out.prev_sample.shape == x.shape and out.pred_original_sample.shape == x.shape, (
        f"prev_sample / pred_original_sample must keep the shape {tuple(x.shape)} of sample"
    )
    return out


def assert_close(actual, expected, message, rtol=1e-4):
    atol = 1e-5 * (1 + float(expected.abs().max()))
    if not torch.allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=False):
        err = (actual - expected).abs().max().item()
        raise AssertionError(f"{message} (largest error {err:.3g})")


# ------------------------------------------------------------------------- TODO #1


def check_noise_level(num_steps, spacing, shape):
    ours, oracle = make(num_steps, spacing)
    for t in ours.timesteps.tolist():
        x, eps = inputs(shape, t)
        a, b = step(ours, eps, t, x, seed=1), step(ours, eps, t, x, seed=2)
        if t == 0:
            continue  # no noise at the last step; checked by the step tests
        prev_t = oracle.previous_timestep(t)
        sigma = oracle._get_variance(t) ** 0.5
        expected = sigma * (noise(shape, 1) - noise(shape, 2))
        assert_close(
            a.prev_sample - b.prev_sample,
            expected,
            f"{num_steps} steps ({spacing}), t={t}, prev_t={int(prev_t)}: the noise level "
            f"sqrt(beta-bar_(t-1) / beta-bar_t * beta_t), made from your TODO #1 values, should be "
            f"{float(sigma):.6g}: check alpha_prod_t = alphas_cumprod[t], alpha_prod_t_prev = "
            f"alphas_cumprod[prev_t] (self.one when prev_t < 0), and the betas",
        )


@pytest.mark.todo(TODO1, weight=2)
@pytest.mark.parametrize("shape", SHAPES)
def test_alphas_betas_over_all_1000_steps(shape):
    check_noise_level(1000, "leading", shape)


@pytest.mark.todo(TODO1)
def test_alphas_betas_with_50_leading_steps_use_prev_t_not_t_minus_1():
    check_noise_level(50, "leading", SHAPES[1])


@pytest.mark.todo(TODO1)
def test_alphas_betas_with_50_trailing_steps_and_prev_t_below_zero():
    check_noise_level(50, "trailing", SHAPES[1])


# ------------------------------------------------------------------------- TODO #2


def check_pred_original_sample(num_steps, spacing, clip, shape):
    ours, oracle = make(num_steps, spacing, clip)
    for t in ours.timesteps.tolist():
        x, eps = inputs(shape, t)
        got = step(ours, eps, t, x, seed=1).pred_original_sample
        expected = oracle.step(eps, t, x, generator=torch.Generator().manual_seed(1))
        assert_close(
            got,
            expected.pred_original_sample,
            f"{num_steps} steps ({spacing}), t={t}, clip_sample={clip}: pred_original_sample "
            f"should be (x_t - sqrt(beta-bar_t) * eps) / sqrt(alpha-bar_t), Eq. (1)"
            + ("" if clip else " (do not clip it yourself: the code after TODO #2 does)"),
        )


@pytest.mark.todo(TODO2, weight=2)
@pytest.mark.parametrize("shape", SHAPES)
def test_pred_original_sample_without_clipping(shape):
    check_pred_original_sample(1000, "leading", False, shape)


@pytest.mark.todo(TODO2)
def test_pred_original_sample_with_clipping():
    check_pred_original_sample(1000, "leading", True, SHAPES[1])


@pytest.mark.todo(TODO2)
@pytest.mark.parametrize("spacing", ["leading", "trailing"])
def test_pred_original_sample_with_50_steps(spacing):
    check_pred_original_sample(50, spacing, False, SHAPES[1])


# ------------------------------------------------------------------------- TODO #3


def check_prev_sample(num_steps, spacing, clip, shape):
    ours, oracle = make(num_steps, spacing, clip)
    alphas_cumprod = oracle.alphas_cumprod
    for t in ours.timesteps.tolist():
        x, eps = inputs(shape, t)
        out = step(ours, eps, t, x, seed=1)
        prev_t = int(oracle.previous_timestep(t))
        a_t = alphas_cumprod[t]
        a_prev = alphas_cumprod[prev_t] if prev_t >= 0 else torch.tensor(1.0)
        beta_t = 1 - a_t / a_prev
        mean = (a_prev.sqrt() * beta_t / (1 - a_t)) * out.pred_original_sample + (
            (1 - beta_t).sqrt() * (1 - a_prev) / (1 - a_t)
        ) * x
        sigma = oracle._get_variance(t) ** 0.5 if t > 0 else 0.0
        assert_close(
            out.prev_sample,
            mean + sigma * noise(shape, 1),
            f"{num_steps} steps ({spacing}), t={t}, prev_t={prev_t}, clip_sample={clip}: "
            f"pred_prev_sample should be sqrt(alpha-bar_(t-1)) * beta_t / beta-bar_t * x_0 + "
            f"sqrt(alpha_t) * beta-bar_(t-1) / beta-bar_t * x_t, Eq. (2) (x_0 = the clipped "
            f"pred_original_sample; no noise term: the code after TODO #3 adds it)",
        )


@pytest.mark.todo(TODO3, weight=2)
@pytest.mark.parametrize("shape", SHAPES)
def test_prev_sample_over_all_1000_steps(shape):
    check_prev_sample(1000, "leading", True, shape)


@pytest.mark.todo(TODO3)
def test_prev_sample_without_clipping():
    check_prev_sample(1000, "leading", False, SHAPES[1])


@pytest.mark.todo(TODO3)
@pytest.mark.parametrize("spacing", ["leading", "trailing"])
def test_prev_sample_with_50_steps(spacing):
    check_prev_sample(50, spacing, True, SHAPES[1])


@pytest.mark.todo(TODO3)
def test_last_step_returns_the_predicted_clean_image():
    ours, _ = make(1000, "leading")
    x, eps = inputs(SHAPES[1], 0)
    out = step(ours, eps, 0, x, seed=1)
    assert_close(
        out.prev_sample,
        out.pred_original_sample,
        "at the last step (t=0, prev_t=-1, alpha-bar_(t-1) = 1) Eq. (2) gives x_(t-1) = x_0",
    )
