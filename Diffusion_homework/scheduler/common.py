"""What the DDPM and DDIM schedulers share: the beta schedule, the timesteps and the step from one
timestep to the next, the alpha-bar lookup, reading a model's config."""

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
    if timesteps[0] >= num_train:
        raise ValueError(
            f"{num_inference_steps} steps with steps_offset={offset} start at timestep "
            f"{int(timesteps[0])}, past the last of {num_train}: take fewer steps."
        )
    return [int(t) for t in timesteps]


class HomeworkScheduler(SchedulerMixin, ConfigMixin):
    """The base of DDPMScheduler and DDIMScheduler: what does not depend on the sampler.

    It holds the beta schedule (`betas`, `alphas`, `alphas_cumprod`), the timesteps of sampling
    (`timesteps`: all `num_train_timesteps` of them, from T - 1 down to 0, until `set_timesteps`
    picks fewer), the timestep that follows each one (`previous_timestep`) and alpha-bar at any
    timestep (`_alpha_prod`), and loads `scheduler_config.json` of real models: keys this
    scheduler does not use are ignored.
    """

    config_name = "scheduler_config.json"

    @classmethod
    def extract_init_dict(cls, config_dict, **kwargs):
        for key, default in UNSUPPORTED.items():
            if config_dict.get(key, default) not in (default, None):
                raise ValueError(f"{cls.__name__} does not support {key}={config_dict[key]!r}.")
        known = cls._get_init_keys(cls)
        config_dict = {k: v for k, v in config_dict.items() if k in known or k.startswith("_")}
        return super().extract_init_dict(config_dict, **kwargs)

    def _init_schedule(self, set_alpha_to_one: bool) -> None:
        """The end of both __init__s: the betas of the config and the full schedule of T steps."""
        config = self.config
        self.betas = make_betas(
            config.beta_schedule, config.beta_start, config.beta_end, config.num_train_timesteps
        )
        self.alphas = 1.0 - self.betas
        # alpha-bar_t = alpha_1 * ... * alpha_t (Eq. (3)); alphas_cumprod[t] is alpha-bar at timestep t.
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)
        # alpha-bar after the last step: 1 (a clean image) or, as some models were trained, alpha-bar_0.
        self.final_alpha_cumprod = torch.tensor(1.0) if set_alpha_to_one else self.alphas_cumprod[0]
        # An unsupported timestep_spacing is refused here, not at the first set_timesteps.
        make_timesteps(config.timestep_spacing, 1, config.num_train_timesteps, config.steps_offset)
        self.num_inference_steps = None  # set_timesteps not called: every training timestep
        self._use_timesteps(list(range(config.num_train_timesteps - 1, -1, -1)))

    def _use_timesteps(self, timesteps: list[int], device: str | torch.device | None = None):
        self.timesteps = torch.tensor(timesteps, device=device)
        self._next_timestep = dict(zip(timesteps, timesteps[1:] + [-1]))

    def set_timesteps(self, num_inference_steps: int, device: str | torch.device | None = None):
        """Choose the timesteps of sampling: T = every training step; fewer = strided by the
        config's timestep_spacing. `device` is where `self.timesteps` goes."""
        timesteps = make_timesteps(
            self.config.timestep_spacing,
            num_inference_steps,
            self.config.num_train_timesteps,
            self.config.steps_offset,
        )
        self.num_inference_steps = num_inference_steps
        self._use_timesteps(timesteps, device)

    def previous_timestep(self, timestep: int | torch.Tensor) -> int:
        """The timestep sampled after `timestep`: the next entry of `self.timesteps`, -1 after the
        last one (t - 1 with all T steps)."""
        timestep = int(timestep)
        if timestep not in self._next_timestep:
            raise ValueError(
                f"Timestep {timestep} is not in this scheduler's {len(self.timesteps)} timesteps: "
                "call step() with the entries of scheduler.timesteps, set by set_timesteps()."
            )
        return self._next_timestep[timestep]

    def _alpha_prod(self, timestep: int) -> torch.Tensor:
        """alpha-bar at `timestep` (Eq. (3)); after the last step (timestep < 0), final_alpha_cumprod."""
        return self.alphas_cumprod[timestep] if timestep >= 0 else self.final_alpha_cumprod
