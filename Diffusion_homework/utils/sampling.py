"""Sampling loops: DDPM/DDIM generation and DDIM + DPS inpainting, a whole batch at a time.

On a GPU the UNet runs under fp16/bf16 autocast (the scheduler math stays in fp32); on the CPU
everything is fp32 (utils/device.py chooses). Image i always gets its own random generator, seeded
`seed + i`, so an image does not depend on the batch it was generated in.
"""

import contextlib

import torch
from diffusers import UNet2DModel
from diffusers.utils.torch_utils import randn_tensor
from tqdm.auto import tqdm

from scheduler.DDIM_scheduler import DDIMScheduler
from scheduler.DDPM_scheduler import DDPMScheduler
from utils.device import enable_tf32
from utils.hub import ModelError, component_subfolder, loading, resolve_model


def prepare_unet(unet: UNet2DModel, device: torch.device) -> UNet2DModel:
    """Move the UNet to `device` for inference (fp32 weights; the compute dtype is autocast's,
    utils.device.autocast_dtype); on a GPU with TF32 and cuDNN autotuning."""
    enable_tf32(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return unet.to(device).eval().requires_grad_(False)


def load_unet_and_scheduler(model_id: str, scheduler_class: type[DDPMScheduler | DDIMScheduler]):
    """The UNet2DModel of `model_id` (hub id or folder) and our scheduler built from its config.

    Raises utils.hub.ModelError (one sentence) when the model is neither on disk nor downloadable,
    its files cannot be loaded, or it is a text-to-image model.
    """
    folder = resolve_model(model_id, ["unet", "scheduler"])
    unet_folder = component_subfolder(folder, "unet")
    with loading("the UNet", folder):
        unet_class = UNet2DModel.load_config(folder, subfolder=unet_folder).get("_class_name")
    if unet_class == "UNet2DConditionModel":
        raise ModelError(
            f"Model '{model_id}' is a text-to-image model (its UNet is a UNet2DConditionModel, as "
            "in Stable Diffusion), but this script samples an unconditional UNet2DModel: pass such "
            "a model, e.g. --model_id google/ddpm-celebahq-256."
        )
    with loading("the UNet", folder):
        unet = UNet2DModel.from_pretrained(folder, subfolder=unet_folder)
    with loading("the scheduler config", folder):
        scheduler = scheduler_class.from_pretrained(
            folder, subfolder=component_subfolder(folder, "scheduler")
        )
    return unet, scheduler


def _autocast(device: torch.device, dtype: torch.dtype):
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def _generators(device: torch.device, seed: int, first: int, count: int) -> list[torch.Generator]:
    return [torch.Generator(device).manual_seed(seed + i) for i in range(first, first + count)]


def _image_shape(unet: UNet2DModel) -> tuple[int, int, int]:
    size = unet.config.sample_size
    height, width = (size, size) if isinstance(size, int) else size
    return unet.config.in_channels, height, width


@torch.no_grad()
def generate(
    unet: UNet2DModel,
    scheduler: DDPMScheduler | DDIMScheduler,
    num_images: int,
    num_inference_steps: int,
    seed: int = 0,
    batch_size: int = 10,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Unconditional samples x_0 in [-1, 1], [num_images, C, H, W] on the CPU (DDIM with eta = 0)."""
    device = unet.device
    scheduler.set_timesteps(num_inference_steps)
    unet_timesteps = scheduler.timesteps.to(device)  # made once: no copy to the GPU per step
    images = []
    for first in range(0, num_images, batch_size):
        count = min(batch_size, num_images - first)
        generator = _generators(device, seed, first, count)
        x = randn_tensor((count, *_image_shape(unet)), generator=generator, device=device)
        steps = tqdm(scheduler.timesteps.tolist(), desc=f"images {first + 1}-{first + count}")
        for i, t in enumerate(steps):
            with _autocast(device, dtype):
                eps = unet(x, unet_timesteps[i]).sample
            x = scheduler.step(eps.float(), t, x, generator=generator).prev_sample
        images.append(x.clamp(-1, 1).cpu())
    return torch.cat(images)


def dps_inpaint(
    unet: UNet2DModel,
    scheduler: DDIMScheduler,
    measurement: torch.Tensor,
    mask: torch.Tensor,
    operator,
    num_inference_steps: int,
    seed: int = 0,
    dps_scale: float = 0.5,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """DDIM sampling guided by DPS (Eq. (11)) towards y = A(x) + n, for a batch of measurements.

    measurement, mask: [B, C, H, W] on the UNet's device. Each step takes the gradient of the
    data misfit w.r.t. x_t through the UNet, then drops the graph. Returns x_0 in [-1, 1] on the CPU.
    """
    device = unet.device
    scheduler.set_timesteps(num_inference_steps)
    unet_timesteps = scheduler.timesteps.to(device)
    generator = _generators(device, seed, 0, measurement.shape[0])
    x = randn_tensor(measurement.shape, generator=generator, device=device)
    for i, t in enumerate(tqdm(scheduler.timesteps.tolist(), desc="DPS")):
        x = x.detach().requires_grad_(True)
        with _autocast(device, dtype):
            eps = unet(x, unet_timesteps[i]).sample
        out = scheduler.step(
            eps.float(),
            t,
            x,
            generator=generator,
            use_DPS=True,
            operator=operator,
            mask=mask,
            measurement=measurement,
            DPS_scale=dps_scale,
        )
        x = out.prev_sample.detach()
    return x.clamp(-1, 1).cpu()
