"""Our DDPM/DDIM schedulers as drop-ins for diffusers': configs of real models, pipelines, seeds,
the sampling loops, and the DPS wiring of step()."""

import json

import pytest
import torch
from diffusers import DDIMPipeline, DDPMPipeline, UNet2DModel
from diffusers import DDIMScheduler as DiffusersDDIM
from diffusers import DDPMScheduler as DiffusersDDPM
from diffusion_helpers import DDIM, DDPM, DPS_UPDATE

from scheduler.DDIM_scheduler import DDIMScheduler
from scheduler.DDPM_scheduler import DDPMScheduler
from utils.inpainting import InpaintingOperator
from utils.sampling import dps_inpaint, generate, load_unet_and_scheduler


@pytest.fixture(scope="module")
def unet(tiny_model):
    return UNet2DModel.from_pretrained(tiny_model, subfolder="unet").eval()


@pytest.mark.parametrize(
    "ours, theirs", [(DDPMScheduler, DiffusersDDPM), (DDIMScheduler, DiffusersDDIM)]
)
def test_real_scheduler_config_loads_silently(tiny_model, ours, theirs, caplog):
    scheduler = ours.from_pretrained(tiny_model, subfolder="scheduler")
    assert "not expected" not in caplog.text  # legacy keys (timestep_values, ...) are ignored
    reference = theirs.from_pretrained(tiny_model, subfolder="scheduler")
    assert torch.equal(scheduler.alphas_cumprod, reference.alphas_cumprod)
    assert scheduler.config.clip_sample and scheduler.config.num_train_timesteps == 1000
    assert ours.from_config(reference.config).config.beta_end == 0.02


def test_stable_diffusion_style_config(tmp_path):
    config = {"_class_name": "PNDMScheduler", "beta_schedule": "scaled_linear", "beta_start": 0.00085,
              "beta_end": 0.012, "set_alpha_to_one": False, "skip_prk_steps": True,
              "steps_offset": 1, "clip_sample": False}  # fmt: skip
    (tmp_path / "scheduler_config.json").write_text(json.dumps(config))
    for ours, theirs in [(DDPMScheduler, DiffusersDDPM), (DDIMScheduler, DiffusersDDIM)]:
        a, b = ours.from_pretrained(tmp_path), theirs.from_pretrained(tmp_path)
        a.set_timesteps(50)
        b.set_timesteps(50)
        assert torch.allclose(a.alphas_cumprod, b.alphas_cumprod)
        assert a.timesteps.tolist() == b.timesteps.tolist()


@pytest.mark.parametrize(
    "entry", [{"prediction_type": "v_prediction"}, {"thresholding": True}, {"beta_schedule": "squaredcos_cap_v2"},
              {"timestep_spacing": "linspace"}, {"trained_betas": [0.1, 0.2]}],
)  # fmt: skip
def test_options_we_do_not_implement_are_refused(entry):
    for ours in (DDPMScheduler, DDIMScheduler):
        with pytest.raises(ValueError):
            ours.from_config({"_class_name": "DDPMScheduler", **entry})


@pytest.mark.needs(*DDPM)
def test_ddpm_pipeline_runs_our_scheduler_like_diffusers(unet):
    ours = DDPMPipeline(unet=unet, scheduler=DDPMScheduler(clip_sample=True))
    theirs = DDPMPipeline(unet=unet, scheduler=DiffusersDDPM(clip_sample=True))
    kwargs = dict(batch_size=2, num_inference_steps=30, output_type="np")
    a = ours(generator=torch.Generator().manual_seed(3), **kwargs).images
    b = theirs(generator=torch.Generator().manual_seed(3), **kwargs).images
    assert a.shape == (2, 16, 16, 3)
    assert abs(a - b).max() < 1e-4, "same seed, same images as diffusers' DDPMScheduler"


@pytest.mark.parametrize("eta", [0.0, 1.0])
@pytest.mark.needs(*DDIM)
def test_ddim_pipeline_runs_our_scheduler_like_diffusers(unet, eta):
    pipe = DDIMPipeline(unet=unet, scheduler=DiffusersDDIM())
    kwargs = dict(batch_size=3, num_inference_steps=20, eta=eta, output_type="np")
    b = pipe(generator=torch.Generator().manual_seed(5), **kwargs).images
    pipe.scheduler = DDIMScheduler()  # DDIMPipeline converts its argument to diffusers' DDIM
    assert isinstance(pipe.scheduler, DDIMScheduler)
    a = pipe(generator=torch.Generator().manual_seed(5), **kwargs).images
    assert abs(a - b).max() < 1e-4, "same seed, same images as diffusers' DDIMScheduler"


@pytest.mark.needs(*DDIM)
def test_step_returns_tuples_too():
    scheduler = DDIMScheduler()
    scheduler.set_timesteps(10)
    x = torch.randn(1, 3, 4, 4)
    prev, x0 = scheduler.step(torch.randn_like(x), 900, x, return_dict=False)
    assert prev.shape == x0.shape == x.shape


@pytest.mark.needs(*DDPM)
def test_generate_does_not_depend_on_the_batch_size(tiny_model):
    unet, scheduler = load_unet_and_scheduler(str(tiny_model), DDPMScheduler)
    whole = generate(unet, scheduler, 3, 10, seed=7, batch_size=3)
    chunked = generate(unet, scheduler, 3, 10, seed=7, batch_size=2)
    other_seed = generate(unet, scheduler, 1, 10, seed=8, batch_size=1)
    assert whole.shape == (3, 3, 16, 16) and whole.abs().max() <= 1
    assert torch.allclose(whole, chunked, atol=1e-5), "image i is seeded by seed + i"
    assert torch.allclose(whole[1:2], other_seed, atol=1e-5), (
        "image 1 of seed 7 is image 0 of seed 8"
    )


def test_root_layout_model_loads(tmp_path):
    from tools.demo.diffusion import build_tiny_ddpm

    folder = build_tiny_ddpm(tmp_path / "root", sample_size=8, root_layout=True)
    unet, scheduler = load_unet_and_scheduler(str(folder), DDIMScheduler)
    assert unet.config.sample_size == 8 and isinstance(scheduler, DDIMScheduler)


@pytest.mark.needs(*DDIM, DPS_UPDATE)
def test_dps_step_applies_the_correction_to_ddim(unet):
    """step(use_DPS=True) = step() followed by dps_correction with the step's x_0."""
    scheduler = DDIMScheduler()
    scheduler.set_timesteps(50)
    y, mask = (
        torch.rand(2, 3, 16, 16),
        (torch.rand(2, 1, 16, 16) > 0.5).float().expand(2, 3, 16, 16),
    )
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    plain = scheduler.step(unet(x, 500).sample, 500, x)
    guided = scheduler.step(unet(x, 500).sample, 500, x, use_DPS=True, operator=InpaintingOperator(),
                            mask=mask, measurement=y)  # fmt: skip
    x0 = plain.pred_original_sample
    expected = scheduler.dps_correction(
        x, x0, plain.prev_sample, y, InpaintingOperator(), mask, 0.5
    )
    assert torch.allclose(guided.prev_sample, expected, atol=1e-6)
    assert not torch.allclose(guided.prev_sample, plain.prev_sample)


@pytest.mark.needs(*DDIM, DPS_UPDATE)
def test_dps_loop_moves_towards_the_measurement(unet):
    """With DPS the result agrees better with y on the observed pixels than without."""
    torch.manual_seed(0)
    clean = torch.rand(1, 3, 16, 16) * 2 - 1
    mask = (torch.rand(1, 1, 16, 16) > 0.5).float().expand(1, 3, 16, 16)
    operator = InpaintingOperator()
    y = operator.forward(clean, mask)
    guided = dps_inpaint(unet, DDIMScheduler(), y, mask, operator, 20, seed=1, dps_scale=0.5)
    free = dps_inpaint(unet, DDIMScheduler(), y, mask, operator, 20, seed=1, dps_scale=0.0)
    misfit = lambda x: (operator.forward(x, mask) - y).norm()  # noqa: E731
    assert misfit(guided) < misfit(free)
