"""DDPM sampling (Ho et al. 2020), Sec. 4 of the handout: x_t -> x_{t-1} with Eqs. (1)-(8)."""

from dataclasses import dataclass

import torch
from diffusers.configuration_utils import register_to_config
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

from scheduler.common import HomeworkScheduler


@dataclass
class DDPMSchedulerOutput(BaseOutput):
    """prev_sample: x_{t-1}, the next input of the UNet. pred_original_sample: the predicted x_0."""

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor


class DDPMScheduler(HomeworkScheduler):
    """Ancestral DDPM sampler with epsilon prediction and the 'fixed_small' variance.

    Drop-in for diffusers' DDPMScheduler (same config file, set_timesteps and step), so
    `DDPMScheduler.from_pretrained(model_folder, subfolder="scheduler")` reads a model's config.
    Without set_timesteps it samples all `num_train_timesteps` steps.

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
        variance_type (`str`, defaults to `"fixed_small"`):
            The variance sigma^2 of the noise in Eq. (2); only `"fixed_small"`,
            beta-bar_{t-1} / beta-bar_t * beta_t.
        clip_sample (`bool`, defaults to `True`):
            Clip the predicted x_0 to [-clip_sample_range, clip_sample_range] (images live in [-1, 1]).
        clip_sample_range (`float`, defaults to 1.0):
            The bound of that clipping.
        prediction_type (`str`, defaults to `"epsilon"`):
            What the model predicts; only `"epsilon"`, the noise eps of Eq. (1).
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
        variance_type: str = "fixed_small",
        clip_sample: bool = True,
        clip_sample_range: float = 1.0,
        prediction_type: str = "epsilon",
        timestep_spacing: str = "leading",
        steps_offset: int = 0,
    ):
        if prediction_type != "epsilon" or variance_type != "fixed_small":
            raise ValueError(
                "DDPMScheduler supports only epsilon prediction and fixed_small variance."
            )
        self._init_schedule(set_alpha_to_one=True)
        self.one = self.final_alpha_cumprod  # the name TODO #1 uses for alpha-bar after the end

    def step(
        self,
        model_output: torch.Tensor,
        timestep: int | torch.Tensor,
        sample: torch.Tensor,
        generator: torch.Generator | list[torch.Generator] | None = None,
        return_dict: bool = True,
    ) -> DDPMSchedulerOutput | tuple:
        """One reverse step x_t -> x_{t-1}, Eq. (2).

        model_output: eps_theta(x_t, t), the UNet's noise prediction, [B, C, H, W].
        timestep: t, an entry of self.timesteps.
        sample: x_t, [B, C, H, W]. generator: seeds the noise z of Eq. (2) (one per image or one).
        Returns prev_sample x_{t-1} and pred_original_sample x_0 (Eq. (1)), both [B, C, H, W].
        """
        # Notation: model_output -> eps, sample -> x_t, pred_original_sample -> x_0,
        #   pred_prev_sample -> x_{t-1}, alpha_prod_t -> alpha-bar_t, beta_prod_t -> beta-bar_t.

        # 1. previous timestep: the next entry of self.timesteps (t - 1 with all 1000 steps)
        t = int(timestep)
        prev_t = self.previous_timestep(t)

        # 2. alphas and betas (TODO #1)
        # TODO #1: the alphas and betas of Eqs. (3)-(8) at the current timestep t and at prev_t.
        #   self.alphas_cumprod[t] is alpha-bar_t (Eq. (3)); alpha-bar_{t-1} (Eq. (4)) is the value at
        #   prev_t, which is t - 1 only with 1000 steps. After the last step prev_t < 0: use self.one
        #   (alpha-bar = 1) there. Set these 0-dim tensors:
        #   alpha_prod_t = alpha-bar_t, alpha_prod_t_prev = alpha-bar_{t-1},
        #   beta_prod_t = beta-bar_t (Eq. (5)), beta_prod_t_prev = beta-bar_{t-1} (Eq. (6)),
        #   current_alpha_t = alpha_t (Eq. (7)), current_beta_t = beta_t (Eq. (8)). With fewer than
        #   1000 steps alpha_t spans prev_t..t, so take it from Eq. (7), not from self.alphas[t].
        # ------------------------------- BEGIN TODO #1 -------------------------------
        alpha_prod_t = self.alphas_cumprod[t]
        alpha_prod_t_prev = self.alphas_cumprod[prev_t] if prev_t >= 0 else self.one
        beta_prod_t = 1 - alpha_prod_t
        beta_prod_t_prev = 1 - alpha_prod_t_prev
        current_alpha_t = alpha_prod_t / alpha_prod_t_prev
        current_beta_t = 1 - current_alpha_t
        # -------------------------------- END TODO #1 --------------------------------

        # 3. predicted original sample x_0, Eq. (1) (TODO #2)
        # TODO #2: the predicted clean image, Eq. (1):
        #   x_0 = (x_t - sqrt(beta-bar_t) * eps) / sqrt(alpha-bar_t).
        #   x_t = sample, eps = model_output (both [B, C, H, W]); alpha-bar_t, beta-bar_t from TODO #1.
        #   Set pred_original_sample, shape [B, C, H, W]. (It is clipped to [-1, 1] below.)
        # ------------------------------- BEGIN TODO #2 -------------------------------
        pred_original_sample = (sample - beta_prod_t**0.5 * model_output) / alpha_prod_t**0.5
        # -------------------------------- END TODO #2 --------------------------------

        # 4. clip x_0: the images live in [-1, 1]
        if self.config.clip_sample:
            pred_original_sample = pred_original_sample.clamp(
                -self.config.clip_sample_range, self.config.clip_sample_range
            )

        # 5. the mean of x_{t-1}, Eq. (2) (TODO #3)
        # TODO #3: the mean of x_{t-1}, Eq. (2) without its noise term sigma z (added below):
        #   x_{t-1} = sqrt(alpha-bar_{t-1}) * beta_t / beta-bar_t * x_0
        #             + sqrt(alpha_t) * beta-bar_{t-1} / beta-bar_t * x_t
        #   x_0 = pred_original_sample, x_t = sample, the rest from TODO #1.
        #   Set pred_prev_sample, shape [B, C, H, W].
        # ------------------------------- BEGIN TODO #3 -------------------------------
        pred_prev_sample = (
            alpha_prod_t_prev**0.5 * current_beta_t / beta_prod_t * pred_original_sample
            + current_alpha_t**0.5 * beta_prod_t_prev / beta_prod_t * sample
        )
        # -------------------------------- END TODO #3 --------------------------------

        # 6. add the noise term sigma z of Eq. (2); none at the last step (sigma is 0 there)
        if prev_t >= 0:
            # 'fixed_small': sigma^2 = beta-bar_{t-1} / beta-bar_t * beta_t (Eq. (7) of Ho et al.)
            sigma = torch.as_tensor(beta_prod_t_prev / beta_prod_t * current_beta_t).sqrt()
            noise = randn_tensor(
                model_output.shape,
                generator=generator,
                device=model_output.device,
                dtype=model_output.dtype,
            )
            pred_prev_sample = pred_prev_sample + sigma * noise

        # 7. x_{t-1} and x_0
        if not return_dict:
            return (pred_prev_sample, pred_original_sample)
        return DDPMSchedulerOutput(
            prev_sample=pred_prev_sample, pred_original_sample=pred_original_sample
        )
