"""Grading tests for DPS (Part B, Sec. 6): TODO #3 of scheduler/DDIM_scheduler.py, Eq. (11).

TODO #3 lives in DDIMScheduler.dps_correction, which step(use_DPS=True) calls. The tests call it
with x_0 built here from a tiny random UNet (so TODO #1 is not involved), and compare against a
gradient computed independently with autograd:
    x_(t-1) - DPS_scale * grad_(x_t) sum_i ||y_i - mask_i * x_0,i(x_t)||_2
(per-image unsquared norms, the gradient taken w.r.t. x_t through the UNet).
"""

import pytest
import torch
from diffusers import DDIMScheduler as OracleDDIM
from diffusers import UNet2DModel

from scheduler.DDIM_scheduler import DDIMScheduler

TODO3 = "Diffusion_homework/scheduler/DDIM_scheduler.py#3"
CONFIG = dict(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear")


class Inpainting:
    def forward(self, x, mask):
        return x * mask


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    model = UNet2DModel(
        sample_size=8,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
    )
    return model.eval().requires_grad_(False)


def problem(shape, seed=0):
    """x_t, a measurement y = mask * x + 0.05 n, and a pixel mask (1 = observed) of about half."""
    g = torch.Generator().manual_seed(seed)
    x_t = torch.randn(shape, generator=g)
    clean = torch.rand(shape, generator=g) * 2 - 1
    mask = (torch.rand(shape[0], 1, *shape[2:], generator=g) > 0.5).float().expand(shape)
    return x_t, mask * clean + 0.05 * torch.randn(shape, generator=g), mask


def x0_from(unet, x_t, t, clip):
    alpha_bar = OracleDDIM(**CONFIG).alphas_cumprod[t]
    eps = unet(x_t, t).sample
    x0 = (x_t - (1 - alpha_bar).sqrt() * eps) / alpha_bar.sqrt()
    return (x0.clamp(-1, 1) if clip else x0), eps


def oracle(unet, x_t, t, y, mask, clip, scale, prev):
    x = x_t.detach().clone().requires_grad_(True)
    x0, _ = x0_from(unet, x, t, clip)
    misfit = sum(torch.sqrt(((y[i] - mask[i] * x0[i]) ** 2).sum()) for i in range(x.shape[0]))
    (grad,) = torch.autograd.grad(misfit, x)
    return prev.detach() - scale * grad


def run(unet, shape, t, clip=False, scale=0.5, seed=0):
    """The student's dps_correction on a fresh graph, and the oracle's answer."""
    x_t, y, mask = problem(shape, seed)
    sample = x_t.clone().requires_grad_(True)
    x0, eps = x0_from(unet, sample, t, clip)
    prev = 0.9 * x0 + 0.3 * eps  # stands for Eq. (9)'s x_(t-1); built from x_t like it
    prev_before = prev.detach().clone()  # the block may update prev_sample in place
    copies = [tensor.detach().clone() for tensor in (sample, y, mask)]
    scheduler = DDIMScheduler(**CONFIG)
    result = scheduler.dps_correction(sample, x0, prev, y, Inpainting(), mask, scale)
    for before, after, name in zip(copies, (sample, y, mask), ("sample (x_t)", "y", "mask")):
        assert torch.equal(before, after.detach()), f"TODO #3 changed {name} in place"
    assert result.shape == sample.shape, f"prev_sample must keep the shape {tuple(shape)}"
    return result.detach(), oracle(unet, x_t, t, y, mask, clip, scale, prev_before), prev_before


def assert_dps(result, expected, prev, message):
    correction, wanted = result - prev, expected - prev
    if not torch.allclose(
        correction, wanted, rtol=1e-3, atol=1e-6 * (1 + float(wanted.abs().max()))
    ):
        ratio = (correction * wanted).sum() / (wanted * wanted).sum()
        raise AssertionError(
            f"{message}: the DPS correction added to prev_sample is wrong (its projection on the "
            f"expected one is {float(ratio):.3g} times it; -1 means the wrong sign, other factors a "
            f"wrong scale or a squared norm). Expected prev_sample - DPS_scale * grad w.r.t. x_t "
            f"(sample) of ||y - operator.forward(pred_original_sample, mask)||_2"
        )


@pytest.mark.todo(TODO3, weight=2)
@pytest.mark.parametrize("t", [900, 500, 20])
def test_dps_one_image(unet, t):
    result, expected, prev = run(unet, (1, 3, 8, 8), t)
    assert_dps(result, expected, prev, f"t={t}, one image")


@pytest.mark.todo(TODO3, weight=2)
def test_dps_batch_of_three_non_square_images_each_with_its_own_norm(unet):
    result, expected, prev = run(unet, (3, 3, 8, 12), 500, seed=1)
    assert_dps(
        result,
        expected,
        prev,
        "batch of 3 (8x12 images): take each image's norm over (C, H, W) and sum the 3 norms "
        "(one norm over the whole batch couples the images)",
    )


@pytest.mark.todo(TODO3)
def test_dps_with_clipped_x0(unet):
    result, expected, prev = run(unet, (2, 3, 8, 8), 700, clip=True, seed=2)
    assert_dps(result, expected, prev, "pred_original_sample clipped to [-1, 1]")


@pytest.mark.todo(TODO3)
def test_dps_uses_the_given_DPS_scale(unet):
    result, expected, prev = run(unet, (1, 3, 8, 8), 300, scale=0.2, seed=3)
    assert_dps(result, expected, prev, "DPS_scale = 0.2 (use the DPS_scale variable, not 0.5)")


@pytest.mark.todo(TODO3)
def test_dps_gradient_is_taken_through_the_unet(unet):
    # Far from the end the UNet's Jacobian dominates dx_0/dx_t; a gradient w.r.t. x_0 misses it.
    result, expected, prev = run(unet, (1, 3, 8, 8), 980, seed=4)
    assert_dps(result, expected, prev, "t=980: differentiate w.r.t. x_t (sample), not x_0")
