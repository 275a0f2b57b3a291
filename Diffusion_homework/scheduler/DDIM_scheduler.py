"""DDIM sampling (Song et al. 2021), Sec. 5 of the handout, with DPS guidance (Chung et al. 2023), Sec. 6."""

from dataclasses import dataclass

import torch
from diffusers.configuration_utils import register_to_config
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

from scheduler.common import HomeworkScheduler


@dataclass
class DDIMSchedulerOutput(BaseOutput):
    """prev_sample: x_{t-1}, the next input of the UNet. pred_original_sample: the predicted x_0."""

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor


class DDIMScheduler(HomeworkScheduler):
    """DDIM sampler with epsilon prediction; eta = 0 is deterministic, eta = 1 is DDPM-like.

    Drop-in for diffusers' DDIMScheduler (same config file, set_timesteps and step). A DDPM model's
    scheduler config works as is: DDIM samples the same trained model with fewer steps. Without
    set_timesteps it samples all `num_train_timesteps` steps.

    Args:
        num_train_timesteps (`int`, defaults to 1000):
            T, the number of diffusion steps the model was trained with.
        beta_start (`float`, defaults to 0.0001):
            beta_1, the noise variance of the first forward step.
        beta_end (`float`, defaults to 0.02):
            beta_T, the noise variance of the last forward step.
        beta_schedule (`str`, defaults to `"linear"`):
            How beta goes from beta_start to beta_end: `"linear"` (DDPM) or `"scaled_linear"`
            (linear in sqrt(beta), Stable Diffusion).
        clip_sample (`bool`, defaults to `True`):
            Clip the predicted x_0 to [-clip_sample_range, clip_sample_range] (images live in [-1, 1]).
        clip_sample_range (`float`, defaults to 1.0):
            The bound of that clipping.
        set_alpha_to_one (`bool`, defaults to `True`):
            alpha-bar after the last step (`final_alpha_cumprod`): 1, a clean image, or, when
            False, alpha-bar_0, as some models (Stable Diffusion) were configured.
        prediction_type (`str`, defaults to `"epsilon"`):
            What the model predicts; only `"epsilon"`, the noise eps of Eq. (9).
        timestep_spacing (`str`, defaults to `"leading"`):
            Which timesteps set_timesteps(n) picks: `"leading"` (0, k, 2k, ... with k = T // n, plus
            steps_offset) or `"trailing"` (from T - 1 down in steps of T / n, Lin et al. 2023).
        steps_offset (`int`, defaults to 0):
            Added to every timestep of `"leading"` spacing (1 in Stable Diffusion's config).
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
        self._init_schedule(set_alpha_to_one)

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

        model_output: eps_theta(x_t, t), [B, C, H, W]; timestep: t, an entry of self.timesteps;
        sample: x_t, [B, C, H, W] (for DPS it must require grad, and model_output must have been
        computed from it). eta scales the noise sigma_t (0: deterministic DDIM); variance_noise or
        generator give that noise. use_clipped_model_output: diffusers' DDIMPipeline passes it;
        only None or False (eps as the model gave it) is supported.
        DPS: measurement y = A(x) + n, [B, C, H, W]; operator.forward(x, mask) is A.
        Returns prev_sample x_{t-1} and pred_original_sample x_0, both [B, C, H, W].
        """
        if use_clipped_model_output:
            raise ValueError("use_clipped_model_output is not supported by this DDIMScheduler.")
        # Notation: model_output -> eps, sample -> x_t, pred_original_sample -> x_0,
        #   prev_sample -> x_{t-1}, alpha_prod_t -> alpha-bar_t, beta_prod_t -> beta-bar_t.

        # 1. previous timestep: the next entry of self.timesteps, -1 after the last one
        t = int(timestep)
        prev_t = self.previous_timestep(t)

        # 2. alphas: alpha-bar_t and alpha-bar_{t-1} (final_alpha_cumprod after the last step)
        alpha_prod_t = self._alpha_prod(t)
        alpha_prod_t_prev = self._alpha_prod(prev_t)

        # 3. predicted original sample x_0, Eqs. (9)-(10) (TODO #1)
        # TODO #1: the predicted x_0 of Eq. (9) ("predicted x_0"), with beta-bar_t of Eq. (10):
        #   x_0 = (x_t - sqrt(beta-bar_t) * eps) / sqrt(alpha-bar_t), beta-bar_t = 1 - alpha-bar_t.
        #   x_t = sample, eps = model_output ([B, C, H, W]), alpha-bar_t = alpha_prod_t (0-dim).
        #   Set beta_prod_t (0-dim) and pred_original_sample ([B, C, H, W]; clipped below).
        # ------------------------------- BEGIN TODO #1 -------------------------------
        beta_prod_t = 1 - alpha_prod_t
        pred_original_sample = (sample - beta_prod_t**0.5 * model_output) / alpha_prod_t**0.5
        # -------------------------------- END TODO #1 --------------------------------

        # 4. clip x_0: the images live in [-1, 1]
        if self.config.clip_sample:
            pred_original_sample = pred_original_sample.clamp(
                -self.config.clip_sample_range, self.config.clip_sample_range
            )

        # 5. sigma_t of Eq. (9), 0-dim: eta times the DDPM posterior's standard deviation
        sigma_t = eta * self._get_variance(t, prev_t) ** 0.5

        # 6. x_{t-1} without its noise, Eq. (9) (TODO #2)
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

        # 7. add the random-noise term sigma_t * eps_t of Eq. (9)
        if eta > 0:
            if variance_noise is None:
                variance_noise = randn_tensor(
                    model_output.shape,
                    generator=generator,
                    device=model_output.device,
                    dtype=model_output.dtype,
                )
            prev_sample = prev_sample + sigma_t * variance_noise

        # 8. DPS, Sec. 6 (TODO #3 in dps_correction): pull x_{t-1} towards images that agree
        #    with the measurement y
        if use_DPS:
            prev_sample = self.dps_correction(
                sample, pred_original_sample, prev_sample, measurement, operator, mask, DPS_scale
            )

        # 9. x_{t-1} and x_0
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
