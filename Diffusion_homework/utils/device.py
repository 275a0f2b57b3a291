"""Where the Diffusion scripts run and in which precision: the one place that chooses.

The GPU when there is one, else the CPU. --dtype names a precision (DTYPES); 'auto' is half
precision on a GPU and fp32 on the CPU. The sampling loops keep fp32 weights and run the UNet
under autocast (autocast_dtype); SDS/VSD keep Stable Diffusion's weights themselves in the chosen
precision (weights_dtype). On a GPU, fp32 matmuls and convolutions use TF32 (enable_tf32).
"""

import click
import torch

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def pick_device() -> torch.device:
    """cuda when a GPU is available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast_dtype(name: str, device: torch.device, auto: str = "fp16") -> torch.dtype:
    """The UNet's compute dtype for --dtype `name`: 'auto' is `auto` on a GPU and fp32 on the CPU;
    bf16 becomes fp16 on a GPU without bf16."""
    if name == "auto":
        name = auto if device.type == "cuda" else "fp32"
    if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        name = "fp16"
    return DTYPES[name]


def weights_dtype(name: str, device: torch.device) -> torch.dtype:
    """The dtype of Stable Diffusion's UNet, VAE and text encoder for --dtype `name` (SDS/VSD; the
    latents and the LoRA stay fp32): 'auto' is fp16 on a GPU and fp32 on the CPU. Half precision
    needs a GPU: click.BadParameter on the CPU."""
    if name == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if name != "fp32" and device.type != "cuda":
        raise click.BadParameter(f"--dtype {name} needs a GPU; use --dtype fp32 on the CPU.")
    return DTYPES[name]


def enable_tf32(device: torch.device) -> None:
    """On a GPU, let fp32 matmuls and convolutions use TF32 (no effect on the CPU)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
