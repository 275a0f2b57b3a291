"""Score distillation in 2D: the pieces of SDS (Sec. 7 of the handout) and VSD (Sec. 8).

The optimized "image" is a batch of Stable Diffusion latents z, shape [B, 4, h, w] (h = H / 8).
Each step draws timesteps t and noise eps, forms z_t = sqrt(alpha-bar_t) z + sqrt(1 - alpha-bar_t) eps,
and turns the UNet's noise predictions into a gradient for z (Eqs. (16) and (17)), weighted by
w(t) = 1 - alpha-bar_t (Eqs. (14)-(15)).
"""

import torch
import torch.nn.functional as F


def sample_timesteps(batch_size, t_min, t_max, device, generator=None):
    """Timesteps drawn uniformly from the integers in [t_min, t_max), shape [batch_size]."""
    return torch.randint(t_min, t_max, (batch_size,), device=device, generator=generator)


@torch.no_grad()
def guided_noise_prediction(unet, latents_noisy, t, text_embeddings, guidance_scale):
    """Classifier-free guidance: eps(z_t, empty) + s * (eps(z_t, y) - eps(z_t, empty)).

    text_embeddings: [2B, 77, D], the B unconditional (negative-prompt) embeddings first, then the
    B prompt embeddings. One UNet call on the doubled batch; the result is float32, [B, 4, h, w].
    """
    latent_input = torch.cat([latents_noisy, latents_noisy]).to(unet.dtype)
    eps = unet(latent_input, torch.cat([t, t]), encoder_hidden_states=text_embeddings).sample
    eps_uncond, eps_cond = eps.float().chunk(2)
    return eps_uncond + guidance_scale * (eps_cond - eps_uncond)


@torch.no_grad()
def conditional_noise_prediction(unet, latents_noisy, t, prompt_embeddings):
    """eps(z_t; y, t) without guidance (the LoRA model of VSD), float32, [B, 4, h, w]."""
    eps = unet(latents_noisy.to(unet.dtype), t, encoder_hidden_states=prompt_embeddings).sample
    return eps.float()


def sds_gradient(noise_pred, noise, grad_scale=1.0):
    """SDS gradient for the latents before the weighting, Eq. (16): grad_scale * (eps_hat - eps)."""
    # TODO #1: the SDS gradient of Eq. (16), without w(t) (applied later in execute_SDS_VSD.py).
    #   eps_hat(z_t | y, t) -> noise_pred (pretrained UNet with CFG), eps -> noise (the noise added
    #   to make z_t); both [B, 4, h, w]. Set `grad_` = grad_scale * (eps_hat - eps), same shape.
    #   Do not modify noise_pred or noise in place.
    # ------------------------------- BEGIN TODO #1 -------------------------------
    grad_ = grad_scale * (noise_pred - noise)
    # -------------------------------- END TODO #1 --------------------------------
    return grad_


def sds_weights(t, alphas_cumprod):
    """w(t) = sigma_t^2 = 1 - alpha-bar_t, Eqs. (14)-(15), for integer timesteps t.

    t: long tensor, shape [B] (or any shape); alphas_cumprod: alpha-bar for every training
    timestep, shape [T]. Returns one weight per entry of t (shape [B], or [B, 1, 1, 1]).
    """
    sqrt_1m_alphas_cumprod = torch.sqrt(1.0 - alphas_cumprod)
    # TODO #2: the weights w(t) of Eqs. (14)-(15). In Eq. (15) alpha_t stands for sqrt(alpha-bar_t)
    #   (sigma_t is the noise level of z_t), so w(t) = sigma_t^2 = 1 - alpha-bar_t.
    #   alphas_cumprod[t] is alpha-bar_t and sqrt_1m_alphas_cumprod[t] is sigma_t, for a whole
    #   tensor t of timesteps at once. Set `weight`: one value per entry of t, shape [B] (or [B, 1, 1, 1]).
    # ------------------------------- BEGIN TODO #2 -------------------------------
    weight = sqrt_1m_alphas_cumprod[t] ** 2
    # -------------------------------- END TODO #2 --------------------------------
    return weight


def vsd_gradient(noise_pred, noise_pred_phi, grad_scale=1.0):
    """VSD gradient for the latents before the weighting, Eq. (17): grad_scale * (eps_hat - eps_phi)."""
    # TODO #3: the VSD gradient of Eq. (17), without w(t). eps_hat(z_t; y, t) -> noise_pred
    #   (pretrained UNet with CFG), eps_phi(z_t; y, t) -> noise_pred_phi (the LoRA model's
    #   prediction on the same z_t); both [B, 4, h, w]. Set `grad_`, same shape.
    # ------------------------------- BEGIN TODO #3 -------------------------------
    grad_ = grad_scale * (noise_pred - noise_pred_phi)
    # -------------------------------- END TODO #3 --------------------------------
    return grad_


def gradient_to_loss(latents, grad):
    """A loss whose gradient with respect to `latents` is exactly `grad`.

    With target = (latents - grad), detached, 0.5 * sum((latents - target)^2) has the gradient
    latents - target = grad. The constant is 0.5 and the reduction is a sum (not a mean), so the
    optimizer sees the SDS/VSD gradient itself, for every sample of the batch.
    """
    target = (latents - grad).detach()
    return 0.5 * F.mse_loss(latents, target, reduction="sum")


def lora_denoising_loss(unet, latents, prompt_embeddings, scheduler, generator=None):
    """The LoRA model's diffusion loss on the current latents (VSD, Sec. 8).

    The LoRA-adapted UNet learns to denoise the current (detached) latents: a fresh noise and its own
    timestep drawn uniformly over all training timesteps, conditioned on the prompt only (ProlificDreamer
    evaluates this model without guidance), loss = MSE(eps_phi(z_t; y, t), eps).
    """
    latents = latents.detach()
    batch_size = latents.shape[0]
    t = sample_timesteps(
        batch_size, 0, scheduler.config.num_train_timesteps, latents.device, generator
    )
    noise = torch.randn(latents.shape, device=latents.device, generator=generator)
    latents_noisy = scheduler.add_noise(latents, noise, t)
    eps_phi = unet(latents_noisy.to(unet.dtype), t, encoder_hidden_states=prompt_embeddings).sample
    return F.mse_loss(eps_phi.float(), noise)
