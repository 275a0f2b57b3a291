"""Grading tests for SDS and VSD (Part B, Secs. 7-8): the gradients of Eqs. (16)-(17), the weights
w(t) of Eqs. (14)-(15), and the weighted update of the latents.

The oracles are closed forms. The stand-in UNet below is an exact denoiser for a known clean latent
plus an offset chosen by the text embedding (and by the LoRA when it is switched on), so the noise
residual eps_hat - eps of Eq. (16) and the difference eps_hat - eps_phi of Eq. (17) are known exactly.
"""

from types import SimpleNamespace

import execute_SDS_VSD
import pytest
import torch
from diffusers import DDPMScheduler

from utils import sds_vsd_utils

SDS_VSD = "Diffusion_homework/execute_SDS_VSD.py#1"
SDS_GRAD = "Diffusion_homework/utils/sds_vsd_utils.py#1"
WEIGHTS = "Diffusion_homework/utils/sds_vsd_utils.py#2"
VSD_GRAD = "Diffusion_homework/utils/sds_vsd_utils.py#3"


def sd_scheduler():
    """Stable Diffusion's training noise schedule, from diffusers (the independent oracle)."""
    return DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012
    )


def randn(*shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


class OracleUNet(torch.nn.Module):
    """eps(z_t, t, y) = the exact noise in z_t for the clean latents `clean`, plus mean(y) * pattern,
    plus `lora_offset` while the LoRA is switched on (the interface of a PEFT-adapted UNet)."""

    def __init__(self, clean, alphas_cumprod, pattern, lora_offset):
        super().__init__()
        self.clean, self.alphas_cumprod = clean, alphas_cumprod
        self.pattern, self.lora_offset = pattern, lora_offset
        self.dtype = torch.float32
        self.lora_on = lora_offset is not None

    def disable_adapters(self):
        self.lora_on = False

    def enable_adapters(self):
        self.lora_on = True

    def forward(self, sample, timestep, encoder_hidden_states):
        alpha_bar = self.alphas_cumprod[timestep].view(-1, 1, 1, 1)
        clean = self.clean.repeat(sample.shape[0] // self.clean.shape[0], 1, 1, 1)
        eps = (sample - alpha_bar.sqrt() * clean) / (1 - alpha_bar).sqrt()
        eps = eps + encoder_hidden_states.mean(dim=(1, 2)).view(-1, 1, 1, 1) * self.pattern
        if self.lora_on:
            eps = eps + self.lora_offset
        return SimpleNamespace(sample=eps)


def oracle_setup(batch_size, height=5, width=7, lora=False):
    """Stand-in Stable Diffusion (with a LoRA if asked), text embeddings [uncond, cond] with means
    -0.2 and 0.3."""
    scheduler = sd_scheduler()
    clean = randn(batch_size, 4, height, width, seed=1)
    pattern = randn(4, height, width, seed=2)
    lora_offset = randn(batch_size, 4, height, width, seed=3) if lora else None
    unet = OracleUNet(clean, scheduler.alphas_cumprod, pattern, lora_offset)
    embeddings = torch.stack([torch.full((77, 8), -0.2), torch.full((77, 8), 0.3)])
    sd = SimpleNamespace(unet=unet, scheduler=scheduler)
    return sd, clean, embeddings, pattern, lora_offset


def check_scaled_difference(gradient, shape, grad_scale, seed, second_name, equation):
    """gradient(noise_pred, second, grad_scale) must be grad_scale * (noise_pred - second), a new
    tensor of the latents' shape, leaving both inputs as they were."""
    noise_pred, second = randn(*shape, seed=seed), randn(*shape, seed=seed + 1)
    kept = (noise_pred.clone(), second.clone())
    grad = gradient(noise_pred, second, grad_scale=grad_scale)
    assert torch.equal(noise_pred, kept[0]) and torch.equal(second, kept[1]), (
        f"the gradient changed noise_pred or {second_name} in place; compute grad_ as a new tensor"
    )
    assert isinstance(grad, torch.Tensor) and grad.shape == noise_pred.shape, (
        f"grad_ must have the shape of the latents {tuple(noise_pred.shape)}, got "
        f"{getattr(grad, 'shape', type(grad))}"
    )
    expected = grad_scale * (noise_pred - second)
    if torch.allclose(grad, -expected, atol=1e-6):
        pytest.fail(f"grad_ has the wrong sign: {equation} uses noise_pred - {second_name}")
    if torch.allclose(grad, noise_pred - second, atol=1e-6):
        pytest.fail(f"grad_ ignores grad_scale: expected grad_scale * (noise_pred - {second_name})")
    assert torch.allclose(grad, expected, atol=1e-6), (
        f"grad_ is not grad_scale * (noise_pred - {second_name}) for a batch of {shape[0]}, "
        f"{equation}"
    )


# ----------------------------------------------------------------- utils/sds_vsd_utils.py #1 (SDS)


@pytest.mark.todo(SDS_GRAD)
def test_sds_gradient_is_grad_scale_times_noise_residual():
    check_scaled_difference(sds_vsd_utils.sds_gradient, (3, 4, 5, 7), 0.37, 10, "noise", "Eq. (16)")


@pytest.mark.todo(SDS_GRAD)
def test_sds_gradient_batch_of_one_and_other_grad_scale():
    check_scaled_difference(sds_vsd_utils.sds_gradient, (1, 4, 6, 3), 2.5, 12, "noise", "Eq. (16)")


@pytest.mark.todo(SDS_GRAD)
def test_sds_gradient_of_a_stand_in_unet_with_guidance():
    """The exact denoiser leaves only the guided text offset: eps_hat - eps = u + s (c - u)."""
    sd, clean, embeddings, pattern, _ = oracle_setup(batch_size=3)
    settings = execute_SDS_VSD.Settings(generation_mode="sds", guidance_scale=7.5)
    generator = torch.Generator().manual_seed(0)
    grad, t = execute_SDS_VSD.distillation_gradient(sd, clean, embeddings, settings, generator)
    expected = (-0.2 + 7.5 * (0.3 - -0.2)) * pattern.expand_as(clean)
    assert torch.allclose(grad, expected, atol=1e-3), (
        "the SDS gradient of a UNet that predicts the added noise exactly (plus a text offset) must "
        "be that offset: grad_ = noise_pred - noise, Eq. (16)"
    )


# ----------------------------------------------------------------- utils/sds_vsd_utils.py #2 (w(t))


def weights_for(t, alphas_cumprod):
    weight = sds_vsd_utils.sds_weights(t, alphas_cumprod)
    assert isinstance(weight, torch.Tensor), f"weight must be a tensor, got {type(weight)}"
    assert weight.numel() == t.numel() and weight.shape in (t.shape, (t.numel(), 1, 1, 1)), (
        f"weight must hold one value per timestep (shape {tuple(t.shape)} or "
        f"({t.numel()}, 1, 1, 1)), got {tuple(weight.shape)}"
    )
    return weight.reshape(-1)


def check_weights(weight, t, alphas_cumprod):
    alpha_bar = alphas_cumprod[t]
    wrong = {
        "sigma_t = sqrt(1 - alpha-bar_t); Eq. (14) squares it": (1 - alpha_bar).sqrt(),
        "alpha-bar_t; w(t) = 1 - alpha-bar_t": alpha_bar,
        "1 - alpha-bar_t^2; in Eq. (15) alpha_t is sqrt(alpha-bar_t)": 1 - alpha_bar**2,
        "1 - alpha-bar_(t-1); index alphas_cumprod with t itself": 1 - alphas_cumprod[t - 1],
    }
    expected = 1 - alpha_bar
    for what, value in wrong.items():
        if not torch.allclose(value, expected, rtol=1e-3) and torch.allclose(
            weight, value, rtol=1e-4
        ):
            pytest.fail(f"weight is {what}")
    assert torch.allclose(weight, expected, rtol=1e-4, atol=1e-7), (
        f"weight must be w(t) = 1 - alpha-bar_t at t = {t.tolist()}: expected "
        f"{expected.tolist()}, got {weight.tolist()}"
    )


@pytest.mark.todo(WEIGHTS)
def test_weights_are_one_minus_alpha_bar_for_a_batch_of_timesteps():
    alphas_cumprod = sd_scheduler().alphas_cumprod
    t = torch.tensor([20, 979, 500])
    check_weights(weights_for(t, alphas_cumprod), t, alphas_cumprod)


@pytest.mark.todo(WEIGHTS)
def test_weights_at_single_and_end_timesteps_of_another_schedule():
    # A linear schedule, so that nothing specific to SD's betas can pass.
    alphas_cumprod = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000), dim=0)
    for t in (torch.tensor([1]), torch.tensor([999, 0, 250, 21, 700])):
        check_weights(weights_for(t, alphas_cumprod), t, alphas_cumprod)


@pytest.mark.todo(WEIGHTS)
def test_weights_for_every_timestep_broadcast_over_latents():
    alphas_cumprod = sd_scheduler().alphas_cumprod
    t = torch.arange(1000)
    weight = weights_for(t, alphas_cumprod)
    check_weights(weight, t, alphas_cumprod)
    assert (weight[1:] > weight[:-1]).all(), "w(t) = 1 - alpha-bar_t must grow with t"


# ----------------------------------------------------------------- utils/sds_vsd_utils.py #3 (VSD)


@pytest.mark.todo(VSD_GRAD)
def test_vsd_gradient_is_grad_scale_times_pretrained_minus_lora():
    check_scaled_difference(
        sds_vsd_utils.vsd_gradient, (3, 4, 5, 7), 0.37, 20, "noise_pred_phi", "Eq. (17)"
    )


@pytest.mark.todo(VSD_GRAD)
def test_vsd_gradient_batch_of_one_and_other_grad_scale():
    check_scaled_difference(
        sds_vsd_utils.vsd_gradient, (1, 4, 3, 6), 2.5, 22, "noise_pred_phi", "Eq. (17)"
    )


@pytest.mark.todo(VSD_GRAD)
def test_vsd_gradient_of_stand_in_unets_uses_the_lora_prediction():
    """Pretrained: exact denoiser + guided text offset; LoRA: exact denoiser + prompt offset + its
    own offset. eps_hat - eps_phi = u + s (c - u) - c - lora_offset: the added noise cancels."""
    sd, clean, embeddings, pattern, lora_offset = oracle_setup(
        batch_size=3, height=6, width=4, lora=True
    )
    settings = execute_SDS_VSD.Settings(generation_mode="vsd", guidance_scale=7.5)
    generator = torch.Generator().manual_seed(0)
    grad, _ = execute_SDS_VSD.distillation_gradient(sd, clean, embeddings, settings, generator)
    guided = (-0.2 + 7.5 * (0.3 - -0.2)) * pattern.expand_as(clean)
    expected = guided - 0.3 * pattern - lora_offset
    if torch.allclose(grad, guided, atol=1e-3):
        pytest.fail(
            "grad_ uses the added noise; VSD uses the LoRA model's noise_pred_phi, Eq. (17)"
        )
    assert torch.allclose(grad, expected, atol=1e-3), (
        "the VSD gradient must be noise_pred - noise_pred_phi (pretrained minus LoRA), Eq. (17)"
    )


# ----------------------------------------------------------------- execute_SDS_VSD.py #1 (w(t) grad)


def sgd_step(latents, grad, loss_weights, t):
    latents = latents.clone().requires_grad_(True)
    optimizer = torch.optim.SGD([latents], lr=1.0)
    execute_SDS_VSD.sds_vsd_step(latents, optimizer, grad.clone(), loss_weights, t)
    return latents.detach()


def check_update(batch_size, height, width, t, loss_weights):
    latents = randn(batch_size, 4, height, width, seed=30)
    grad = randn(batch_size, 4, height, width, seed=31)
    new = sgd_step(latents, grad, loss_weights, t)
    expected = latents - loss_weights[t].view(-1, 1, 1, 1) * grad
    if torch.allclose(new, latents - grad, atol=1e-5):
        pytest.fail("the gradient is not weighted: grad_ must become w(t) * grad_")
    assert torch.allclose(new, expected, atol=1e-5), (
        "one SGD step (lr 1) must move the latents by -w(t) * grad_, each sample by the weight "
        "loss_weights[t] of its own timestep, broadcast over [4, h, w]"
    )


@pytest.mark.todo(SDS_VSD)
def test_step_moves_latents_by_weighted_gradient():
    # Weights injected directly (not from utils.sds_weights): 1 - alpha-bar of SD's schedule.
    loss_weights = 1 - sd_scheduler().alphas_cumprod
    check_update(3, 5, 7, torch.tensor([20, 979, 500]), loss_weights)


@pytest.mark.todo(SDS_VSD)
def test_step_weights_each_sample_by_its_own_timestep():
    # Arbitrary distinct weights; batch size equal to the width, so a weight vector of shape [B]
    # broadcast over the last axis would go unnoticed by the shapes alone.
    loss_weights = torch.rand(1000, generator=torch.Generator().manual_seed(5)) + 0.1
    check_update(4, 3, 4, torch.tensor([999, 20, 1, 640]), loss_weights)


@pytest.mark.todo(SDS_VSD)
def test_step_with_batch_of_one_and_adam_direction():
    loss_weights = torch.linspace(0.5, 2.0, 1000)
    check_update(1, 6, 2, torch.tensor([123]), loss_weights)
    # Adam's first step moves every entry by about -lr * sign(w(t) * grad_).
    latents = randn(1, 4, 4, 4, seed=32).requires_grad_(True)
    start = latents.detach().clone()
    grad = randn(1, 4, 4, 4, seed=33)
    optimizer = torch.optim.Adam([latents], lr=0.03)
    execute_SDS_VSD.sds_vsd_step(latents, optimizer, grad.clone(), -loss_weights, torch.tensor([7]))
    assert torch.allclose(latents.detach() - start, 0.03 * grad.sign(), atol=1e-4), (
        "with a negative weight the update must flip direction: grad_ = w(t) * grad_"
    )
