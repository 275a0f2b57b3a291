"""What the DDPM and DDIM schedulers share: the beta schedule, the timesteps, reading a model's config."""

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin
from diffusers.schedulers.scheduling_utils import SchedulerMixin

# Config entries of real models that would change the math; we support only their default value.
UNSUPPORTED = {"trained_betas": None, "thresholding": False, "rescale_betas_zero_snr": False}


def make_betas(schedule: str, beta_start: float, beta_end: float, num_steps: int) -> torch.Tensor:
    """beta_1..beta_T: 'linear' (DDPM) or 'scaled_linear' (Stable Diffusion: linear in sqrt(beta))."""
    if schedule == "linear":
        return torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float32)
    if schedule == "scaled_linear":
        return torch.linspace(beta_start**0.5, beta_end**0.5, num_steps, dtype=torch.float32) ** 2
    raise ValueError(
        f"beta_schedule {schedule!r} is not supported: use 'linear' or 'scaled_linear'."
    )


def make_timesteps(
    spacing: str, num_inference_steps: int, num_train: int, offset: int
) -> list[int]:
    """Descending timesteps: 'leading' = 0, k, 2k, ... (+offset), 'trailing' ends at T-1 (Lin et al. 2023)."""
    if not 1 <= num_inference_steps <= num_train:
        raise ValueError(
            f"num_inference_steps must be in [1, {num_train}], got {num_inference_steps}."
        )
    if spacing == "leading":
        step = num_train // num_inference_steps
        timesteps = np.arange(num_inference_steps)[::-1] * step + offset
    elif spacing == "trailing":
        timesteps = np.round(np.arange(num_train, 0, -num_train / num_inference_steps)) - 1
    else:
        raise ValueError(
            f"timestep_spacing {spacing!r} is not supported: use 'leading' or 'trailing'."
        )
    return [int(t) for t in timesteps]


class HomeworkScheduler(SchedulerMixin, ConfigMixin):
    """Loads `scheduler_config.json` of real models: keys this scheduler does not use are ignored."""

    config_name = "scheduler_config.json"

    @classmethod
    def extract_init_dict(cls, config_dict, **kwargs):
        for key, default in UNSUPPORTED.items():
            if config_dict.get(key, default) not in (default, None):
                raise ValueError(f"{cls.__name__} does not support {key}={config_dict[key]!r}.")
        known = cls._get_init_keys(cls)
        config_dict = {k: v for k, v in config_dict.items() if k in known or k.startswith("_")}
        return super().extract_init_dict(config_dict, **kwargs)
