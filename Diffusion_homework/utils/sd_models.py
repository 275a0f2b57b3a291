"""Stable Diffusion's parts for SDS/VSD: text embeddings, UNet, VAE, noise schedule, LoRA.

The model folder has the diffusers pipeline layout: unet/, vae/, text_encoder/, tokenizer/, scheduler/.
"""

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from diffusers.loaders import StableDiffusionLoraLoaderMixin
from diffusers.training_utils import cast_training_params
from diffusers.utils import convert_state_dict_to_diffusers
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from transformers import CLIPTextModel, CLIPTokenizer

from utils.hub import loading
from utils.io import atomic_file

SUBFOLDERS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
# LoRA on the attention projections of every transformer block of the UNet, as ProlificDreamer does.
LORA_TARGET_MODULES = ["to_q", "to_k", "to_v", "to_out.0"]


@dataclass
class StableDiffusion:
    unet: UNet2DConditionModel
    vae: AutoencoderKL
    scheduler: DDPMScheduler


@torch.no_grad()
def encode_prompts(folder, prompts, device, dtype):
    """CLIP text embeddings of `prompts`, shape [len(prompts), 77, D], computed once.

    The text encoder is loaded here and dropped on return, so it holds no GPU memory afterwards.
    Raises utils.hub.ModelError (one sentence) if a part cannot be loaded.
    """
    with loading("the tokenizer", folder):
        tokenizer = CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer")
    with loading("the text encoder", folder):
        text_encoder = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", dtype=dtype)
    text_encoder.to(device).requires_grad_(False)
    tokens = tokenizer(
        prompts,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    )
    return text_encoder(tokens.input_ids.to(device))[0]


def load_stable_diffusion(folder, device, dtype):
    """UNet and VAE in `dtype`, frozen, and the training noise schedule (alpha-bar_t).

    Raises utils.hub.ModelError (one sentence) if a part cannot be loaded.
    """
    with loading("the UNet", folder):
        unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=dtype)
    with loading("the VAE", folder):
        vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=dtype)
    # SD ships a sampler config (PNDM); only its training betas and add_noise are used here.
    with loading("the scheduler config", folder):
        scheduler = DDPMScheduler.from_pretrained(folder, subfolder="scheduler")
    unet.to(device).requires_grad_(False).eval()
    vae.to(device).requires_grad_(False).eval()
    return StableDiffusion(unet=unet, vae=vae, scheduler=scheduler)


def add_lora(unet, rank):
    """Attach a trainable LoRA (PEFT) to the UNet; return its parameters, kept in float32.

    Only the LoRA weights train: the base UNet stays frozen (and in half precision on a GPU).
    PEFT's LoRA layers cast their input to the LoRA weights' dtype, so float32 LoRA weights on a
    float16 base need no autocast. The LoRA starts as the identity (B = 0): eps_phi = eps_pretrained.
    """
    config = LoraConfig(
        r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=LORA_TARGET_MODULES
    )
    unet.add_adapter(config)
    cast_training_params(unet, dtype=torch.float32)
    return [p for p in unet.parameters() if p.requires_grad]


@contextlib.contextmanager
def adapters_disabled(unet):
    """Evaluate the pretrained UNet: the LoRA switched off inside the block, back on after it."""
    unet.disable_adapters()
    try:
        yield unet
    finally:
        unet.enable_adapters()


@torch.no_grad()
def decode_latents(vae, latents):
    """Images from SD latents: uint8 array [B, H, W, 3]. The VAE sees latents / scaling_factor."""
    images = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor).sample
    images = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return np.ascontiguousarray(images.permute(0, 2, 3, 1).cpu().numpy())


def save_lora(unet, path):
    """Save the UNet's LoRA in the diffusers format (`pipeline.load_lora_weights(path)` reads it)."""
    state = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    with atomic_file(path) as tmp:
        StableDiffusionLoraLoaderMixin.save_lora_weights(
            save_directory=tmp.parent, unet_lora_layers=state, weight_name=tmp.name
        )
