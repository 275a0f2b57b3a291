"""SDS/VSD in process on a tiny Stable Diffusion: what trains, what stays frozen, reproducibility."""

import execute_SDS_VSD
import pytest
import torch
from diffusion_helpers import SDS, VSD

from tools.demo.tiny_sd import build_tiny_sd
from utils.hub import resolve_model
from utils.sd_models import SUBFOLDERS, adapters_disabled, encode_prompts, load_stable_diffusion


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    return resolve_model(str(build_tiny_sd(tmp_path_factory.mktemp("sd") / "tiny-sd")), SUBFOLDERS)


def load(folder):
    return load_stable_diffusion(folder, torch.device("cpu"), torch.float32)


def embeddings(folder):
    return encode_prompts(folder, ["", "an astronaut"], torch.device("cpu"), torch.float32)


def settings(mode, steps=3):
    return execute_SDS_VSD.Settings(
        generation_mode=mode, num_steps=steps, height=32, width=48, log_every=steps
    )


def test_tiny_sd_loads_by_path(tiny_sd):
    sd = load(tiny_sd)
    text = embeddings(tiny_sd)
    assert text.shape == (2, 77, sd.unet.config.cross_attention_dim)
    assert not any(p.requires_grad for p in [*sd.unet.parameters(), *sd.vae.parameters()])
    assert sd.scheduler.alphas_cumprod.shape == (1000,)


@pytest.mark.slow
@pytest.mark.needs(*VSD)
def test_vsd_trains_the_lora_and_leaves_the_base_unet_untouched(tiny_sd):
    sd = load(tiny_sd)
    base = {k: v.clone() for k, v in sd.unet.state_dict().items()}
    result = execute_SDS_VSD.optimize(sd, embeddings(tiny_sd), settings("vsd"), log=lambda _: None)

    lora = {k: v for k, v in sd.unet.state_dict().items() if "lora" in k}
    assert lora and all(v.dtype == torch.float32 for v in lora.values())
    lora_b = [v for k, v in lora.items() if "lora_B" in k]
    assert any(v.abs().sum() > 0 for v in lora_b), "LoRA B starts at zero and must have trained"
    for key, value in sd.unet.state_dict().items():
        if "lora" not in key:
            assert torch.equal(value, base[key.replace(".base_layer", "")]), key

    # With the adapter off, the UNet is the pretrained one again.
    fresh = load(tiny_sd).unet
    x, t = torch.randn(1, 4, 4, 6), torch.tensor([500])
    text = embeddings(tiny_sd)[1:]
    with torch.no_grad(), adapters_disabled(sd.unet):
        off = sd.unet(x, t, encoder_hidden_states=text).sample
    with torch.no_grad():
        on = sd.unet(x, t, encoder_hidden_states=text).sample
        expected = fresh(x, t, encoder_hidden_states=text).sample
    assert torch.allclose(off, expected, atol=1e-6)
    assert not torch.allclose(on, expected, atol=1e-6), "the trained LoRA must change eps_phi"
    trainable = {name for name, p in sd.unet.named_parameters() if p.requires_grad}
    assert trainable == {name for name in dict(sd.unet.named_parameters()) if "lora" in name}

    assert len(result.losses["VSD loss"]) == len(result.losses["LoRA loss"]) == 3
    assert [step for step, _ in result.snapshots] == [0, 3]
    assert result.snapshots[-1][1].shape == (32, 48, 3)


@pytest.mark.needs(*SDS)
def test_sds_moves_latents_reproducibly_and_trains_nothing_else(tiny_sd):
    sd = load(tiny_sd)
    text = embeddings(tiny_sd)
    first = execute_SDS_VSD.optimize(sd, text, settings("sds"), log=lambda _: None)
    second = execute_SDS_VSD.optimize(sd, text, settings("sds"), log=lambda _: None)
    assert first.latents.shape == (1, 4, 4, 6)
    assert torch.equal(first.latents, second.latents), "the same seed must give the same result"
    assert not any("lora" in k for k in sd.unet.state_dict())
    start = torch.randn(
        first.latents.shape, generator=torch.Generator().manual_seed(1024)
    )  # the initial latents
    assert not torch.allclose(first.latents, start)
