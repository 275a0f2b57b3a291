"""The homework's DDPM and DDIM schedulers (diffusers-compatible: from_pretrained, set_timesteps, step)."""

from scheduler.DDIM_scheduler import DDIMScheduler
from scheduler.DDPM_scheduler import DDPMScheduler

__all__ = ["DDIMScheduler", "DDPMScheduler"]
