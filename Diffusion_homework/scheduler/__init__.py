"""The homework's DDPM and DDIM schedulers (diffusers-compatible: from_pretrained, set_timesteps, step).

Import them from their modules (`from scheduler.DDPM_scheduler import DDPMScheduler`), so that an
error in one file does not stop the other from loading.
"""
