"""DDIM sampling (Song et al. 2021), Sec. 5 of the handout, with DPS guidance (Chung et al. 2023), Sec. 6."""

from dataclasses import dataclass

import torch
from diffusers.configuration_utils import register_to_config
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

from scheduler.common import HomeworkScheduler, make_betas, make_timesteps


@dataclass
class DDIMSchedulerOutput(BaseOutput):
    """prev_sample: x_{t-1}, the next input of the UNet. pred_original_sample: the predicted x_0."""

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor


class DDIMScheduler(HomeworkScheduler):
    """DDIM sampler with epsilon prediction; eta = 0 is deterministic, eta = 1 is DDPM-like.

    Drop-in for diffusers' DDIMScheduler (same config file, set_timesteps and step). A DDPM model's
    scheduler config works as is: DDIM samples the same trained model with fewer steps.
    """

    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.0001,
        beta_end: float = 0.02,
        beta_schedule: str = "linear",
        clip_sample: bool = True,
        clip_sample_range: float = 1.0,
        set_alpha_to_one: bool = True,
        prediction_type: str = "epsilon",
        timestep_spacing: str = "leading",
        steps_offset: int = 0,
    ):
        if prediction_type != "epsilon":
            raise ValueError("DDIMScheduler supports only epsilon prediction.")
        self.betas = make_betas(beta_schedule, beta_start, beta_end, num_train_timesteps)
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)  # alpha-bar_t
        # alpha-bar after the last step: 1 (a clean image) or, as some models were trained, alpha-bar_0.
        self.final_alpha_cumprod = torch.tensor(1.0) if set_alpha_to_one else self.alphas_cumprod[0]
        make_timesteps(timestep_spacing, 1, num_train_timesteps, steps_offset)  # check the spacing
        self.num_inference_steps = None
        self.timesteps = torch.arange(num_train_timesteps - 1, -1, -1)

    def set_timesteps(self, num_inference_steps: int, device: str | torch.device | None = None):
        """Choose the timesteps of sampling: every (1000 // num_inference_steps)-th training step."""
        timesteps = make_timesteps(
            self.config.timestep_spacing,
            num_inference_steps,
            self.config.num_train_timesteps,
            self.config.steps_offset,
        )
        self.num_inference_steps = num_inference_steps
        self.timesteps = torch.tensor(timesteps, device=device)

    def _alpha_prod(self, timestep: int) -> torch.Tensor:
        return self.alphas_cumprod[timestep] if timestep >= 0 else self.final_alpha_cumprod

    def _get_variance(self, t: int, prev_t: int) -> torch.Tensor:
        """sigma_t^2 / eta^2 = beta-bar_{t-1} / beta-bar_t * (1 - alpha-bar_t / alpha-bar_{t-1}), Eq. (16) of DDIM."""
        alpha_prod_t, alpha_prod_t_prev = self._alpha_prod(t), self._alpha_prod(prev_t)
        return (1 - alpha_prod_t_prev) / (1 - alpha_prod_t) * (1 - alpha_prod_t / alpha_prod_t_prev)

    def step(
        self,
        model_output: torch.Tensor,
        timestep: int | torch.Tensor,
        sample: torch.Tensor,
        eta: float = 0.0,
        use_clipped_model_output: bool | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        variance_noise: torch.Tensor | None = None,
        return_dict: bool = True,
        use_DPS: bool = False,
        operator=None,
        mask: torch.Tensor | None = None,
        measurement: torch.Tensor | None = None,
        DPS_scale: float = 0.5,
    ) -> DDIMSchedulerOutput | tuple:
        """One reverse step x_t -> x_{t-1}, Eq. (9); with use_DPS, the DPS correction of Eq. (11).

        model_output: eps_theta(x_t, t), [B, C, H, W]; sample: x_t, [B, C, H, W] (for DPS it must
        require grad, and model_output must have been computed from it). eta scales the noise
        sigma_t (0: deterministic DDIM); variance_noise or generator give that noise.
        DPS: measurement y = A(x) + n, [B, C, H, W]; operator.forward(x, mask) is A.
        Returns prev_sample x_{t-1} and pred_original_sample x_0, both [B, C, H, W].
        """
        if use_clipped_model_output:
            raise ValueError("use_clipped_model_output is not supported by this DDIMScheduler.")
        if self.num_inference_steps is None:
            raise ValueError("Call set_timesteps(num_inference_steps) before step().")
        t = int(timestep)
        prev_t = t - self.config.num_train_timesteps // self.num_inference_steps
        alpha_prod_t = self._alpha_prod(t)  # alpha-bar_t
        alpha_prod_t_prev = self._alpha_prod(prev_t)  # alpha-bar_{t-1}, 1 after the last step

        # TODO #1: the predicted x_0 of Eq. (9) ("predicted x_0"), with beta-bar_t of Eq. (10):
        #   x_0 = (x_t - sqrt(beta-bar_t) * eps) / sqrt(alpha-bar_t), beta-bar_t = 1 - alpha-bar_t.
        #   x_t = sample, eps = model_output ([B, C, H, W]), alpha-bar_t = alpha_prod_t (0-dim).
        #   Set beta_prod_t (0-dim) and pred_original_sample ([B, C, H, W]; clipped below).
        # ------------------------------- BEGIN TODO #1 -------------------------------
        beta_prod_t = 1 - alpha_prod_t
        pred_original_sample = (sample - beta_prod_t**0.5 * model_output) / alpha_prod_t**0.5
        # -------------------------------- END TODO #1 --------------------------------

        if self.config.clip_sample:  # the images live in [-1, 1]
            pred_original_sample = pred_original_sample.clamp(
                -self.config.clip_sample_range, self.config.clip_sample_range
            )
        sigma_t = eta * self._get_variance(t, prev_t) ** 0.5  # sigma_t of Eq. (9), 0-dim

        # TODO #2: x_{t-1} by Eq. (9) without its random-noise term sigma_t * eps_t (added below):
        #   x_{t-1} = sqrt(alpha-bar_{t-1}) * x_0 + sqrt(1 - alpha-bar_{t-1} - sigma_t^2) * eps
        #   ("predicted x_0" part + "direction pointing to x_t"). x_0 = pred_original_sample,
        #   eps = model_output, alpha-bar_{t-1} = alpha_prod_t_prev, sigma_t = sigma_t.
        #   Set prev_sample, shape [B, C, H, W].
        # ------------------------------- BEGIN TODO #2 -------------------------------
        prev_sample = (
            alpha_prod_t_prev**0.5 * pred_original_sample
            + (1 - alpha_prod_t_prev - sigma_t**2) ** 0.5 * model_output
        )
        # -------------------------------- END TODO #2 --------------------------------

        if eta > 0:  # the random-noise term sigma_t * eps_t of Eq. (9)
            if variance_noise is None:
                variance_noise = randn_tensor(
                    model_output.shape,
                    generator=generator,
                    device=model_output.device,
                    dtype=model_output.dtype,
                )
            prev_sample = prev_sample + sigma_t * variance_noise

        if use_DPS:  # Sec. 6: pull x_{t-1} towards images that agree with the measurement y
            prev_sample = self.dps_correction(
                sample, pred_original_sample, prev_sample, measurement, operator, mask, DPS_scale
            )

        if not return_dict:
            return (prev_sample, pred_original_sample)
        return DDIMSchedulerOutput(
            prev_sample=prev_sample, pred_original_sample=pred_original_sample
        )

    def dps_correction(
        self,
        sample: torch.Tensor,
        pred_original_sample: torch.Tensor,
        prev_sample: torch.Tensor,
        measurement: torch.Tensor,
        operator,
        mask: torch.Tensor,
        DPS_scale: float,
    ) -> torch.Tensor:
        """Diffusion posterior sampling, Eq. (11): move x_{t-1} down the gradient of the data misfit.

        sample: x_t [B, C, H, W], requires grad; pred_original_sample: x_0 computed from it (so the
        gradient flows through the UNet); prev_sample: x_{t-1} of Eq. (9); measurement: y.
        """
        # TODO #3: DPS, Eq. (11): x_{t-1} <- x_{t-1} - DPS_scale * grad_{x_t} ||y - A(x_0)||_2.
        #   y = measurement, A(x_0) = operator.forward(pred_original_sample, mask), x_t = sample,
        #   x_{t-1} = prev_sample (all [B, C, H, W]). The norm is NOT squared. The batch holds B images:
        #   take each image's norm (over C, H, W) and sum the B norms, so that every image gets the
        #   update it would get alone. Use torch.autograd.grad for the gradient w.r.t. x_t
        #   ([B, C, H, W]). Set prev_sample, shape [B, C, H, W].
        # ------------------------------- BEGIN TODO #3 -------------------------------
        residual = measurement - operator.forward(pred_original_sample, mask)
        norm = torch.linalg.vector_norm(residual, dim=(1, 2, 3)).sum()
        norm_grad = torch.autograd.grad(outputs=norm, inputs=sample)[0]
        prev_sample = prev_sample - DPS_scale * norm_grad
        # -------------------------------- END TODO #3 --------------------------------
        return prev_sample
