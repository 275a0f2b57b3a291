"""How the program reaches each TODO block: the one grading module a worker loads.

For each case the judge sends, `REACH[path][N](module, case)` calls the program the way it runs
(e.g. `StyleGAN2Loss.accumulate_gradients("Gmain", ...)`) and returns the graded block's names
as they were at its last line (tools/worker.py). Everything here is plumbing: the stand-in
networks, the inpainting operator and the map from x_t to x_0 of the DPS case take their
numbers from the case; no function here computes what a TODO block computes. The judge's checks
and oracles (the other modules of this folder) stay in the course tree and are never copied to
where a worker can read them. The values that the file's other blocks would set come from the
judge too, as data in the case (`inputs`, `stand_ins`), never from code in here.
"""

import random

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from tools.worker import capture

LOSS = "GAN_homework/training/loss.py"
CUTOUT = "GAN_homework/DiffAugment_pytorch.py"
DDPM = "Diffusion_homework/scheduler/DDPM_scheduler.py"
DDIM = "Diffusion_homework/scheduler/DDIM_scheduler.py"
SDS_STEP = "Diffusion_homework/execute_SDS_VSD.py"
SDS_UTILS = "Diffusion_homework/utils/sds_vsd_utils.py"


# ---------------------------------------------------------------- GAN_homework/training/loss.py


class StandInG(torch.nn.Module):
    """G's interface (mapping, synthesis, z_dim) with a parameter, so that phases run."""

    def __init__(self, shape, z_dim=4, num_ws=3):
        super().__init__()
        self.z_dim, self.num_ws, self.shape = z_dim, num_ws, shape
        self.weight = torch.nn.Parameter(torch.ones((), dtype=torch.float64))
        self.mapping = lambda z, **kwargs: z[:, None, :1].repeat(1, self.num_ws, 1) * self.weight
        self.synthesis = lambda ws, **kwargs: ws[:, :1, :1, None].expand(-1, *self.shape) * 0.5


class StandInD(torch.nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.linspace(-1, 1, shape[0] * shape[1] * shape[2]))

    def forward(self, img, force_fp32=False):
        return (img.flatten(1) * self.weight.to(img.dtype)).sum(1, keepdim=True).tanh()


def reach_phase(module, case):
    """One phase of `StyleGAN2Loss.accumulate_gradients` with stand-in networks."""
    args = case["args"]
    shape = tuple(args["shape"])
    batch = args["batch"]
    G, D = StandInG(shape), StandInD(shape)  # noqa: N806
    loss = module.StyleGAN2Loss(
        "cpu",
        G,
        D,
        r1_gamma=args.get("r1_gamma", 10.0),
        style_mixing_prob=0.0,
        diffaug_policy=args.get("policy", ""),
    )
    real_img = torch.rand((batch, *shape), dtype=torch.float64) * 2 - 1
    gen_z = torch.randn((batch, G.z_dim), dtype=torch.float64)
    return capture(loss.accumulate_gradients, args["phase"], real_img, gen_z, gain=1)


# ---------------------------------------------------------------- GAN_homework/DiffAugment_pytorch.py


def reach_cutout(module, case):
    """`rand_cutout(x)`, `draws` times on the same x; several draws come back stacked, [D, *x]."""
    seed = case.get("seed", 0)
    np.random.seed(seed)
    random.seed(seed)
    x = case["inputs"]["x"]
    draws = case["args"].get("draws", 1)
    if draws == 1:
        return capture(module.rand_cutout, x)
    found = []
    for _ in range(draws):
        scope = capture(module.rand_cutout, x)
        if not isinstance(scope.get("x"), torch.Tensor):
            return scope
        found.append(scope["x"].detach().clone())
    if len({tuple(f.shape) for f in found}) > 1:
        return {"x": found[0]}  # the judge reports the shape
    return {"x": torch.stack(found)}


# ---------------------------------------------------------------- the schedulers


def reach_ddpm_step(module, case):
    """DDPMScheduler.step() at timestep t, stopped at the end of the graded block."""
    args, inputs = case["args"], case["inputs"]
    scheduler = module.DDPMScheduler(
        **args["config"], timestep_spacing=args["spacing"], clip_sample=args["clip"]
    )
    scheduler.set_timesteps(args["steps"])
    shape = tuple(args["shape"])
    sample = inputs.get("sample", torch.randn(shape))
    model_output = inputs.get("model_output", torch.randn(shape))
    return capture(scheduler.step, model_output, args["t"], sample)


def reach_ddim_step(module, case):
    """DDIMScheduler.step() at timestep t, stopped at the end of the graded block."""
    args, inputs = case["args"], case["inputs"]
    scheduler = module.DDIMScheduler(
        **args["config"],
        timestep_spacing=args["spacing"],
        clip_sample=args["clip"],
        set_alpha_to_one=args["alpha_to_one"],
    )
    scheduler.set_timesteps(args["steps"])
    shape = tuple(args["shape"])
    sample = inputs.get("sample", torch.randn(shape))
    model_output = inputs.get("model_output", torch.randn(shape))
    return capture(scheduler.step, model_output, args["t"], sample, eta=args["eta"])


class Inpainting:
    """The measurement operator A of utils/inpainting.py: keep the observed pixels."""

    def forward(self, x, mask):
        return x * mask


def dps_map(x_t, net, clip):
    """(x_0, x_(t-1)) from x_t through a small network whose numbers the judge chose (`net`):
    two 3x3 convolutions that mix pixels and channels as a UNet does, then fixed combinations
    with x_t. It stands for the sampling loop's x_0 and x_(t-1), so that the gradient w.r.t.
    x_t runs through a network; x_0 is clipped to [-1, 1] when clip, as step() clips it."""
    hidden = torch.tanh(F.conv2d(x_t, net["w1"], net["b1"], padding=1))
    features = F.conv2d(hidden, net["w2"], padding=1)
    x0 = net["x0"][0] * x_t + net["x0"][1] * features
    x0 = x0.clamp(-1, 1) if clip else x0
    return x0, net["prev"][0] * x0 + net["prev"][1] * features


def reach_dps(module, case):
    """DDIMScheduler.dps_correction on a fresh graph from x_t through the judge's network; y and
    the mask are the judge's inputs themselves, so that it sees whether the block changed them."""
    args, inputs = case["args"], case["inputs"]
    scheduler = module.DDIMScheduler(**args["config"])
    sample = args["x_t"].clone().requires_grad_(True)
    x0, prev = dps_map(sample, args["net"], args["clip"])
    return capture(
        scheduler.dps_correction,
        sample,
        x0,
        prev,
        inputs["measurement"],
        Inpainting(),
        inputs["mask"],
        args["scale"],
    )


# ---------------------------------------------------------------- SDS and VSD


def reach_sds_step(module, case):
    """One `sds_vsd_step` on zero latents with SGD; the block's names are read before the step."""
    given = case["inputs"]
    latents = torch.zeros_like(given["grad_"], requires_grad=True)
    optimizer = torch.optim.SGD([latents], lr=1.0)
    return capture(
        module.sds_vsd_step, latents, optimizer, given["grad_"], given["loss_weights"], given["t"]
    )


def reach_sds_gradient(module, case):
    given = case["inputs"]
    return capture(
        module.sds_gradient, given["noise_pred"], given["noise"], grad_scale=given["grad_scale"]
    )


def reach_weights(module, case):
    given = case["inputs"]
    return capture(module.sds_weights, given["t"], given["alphas_cumprod"])


def reach_vsd_gradient(module, case):
    given = case["inputs"]
    return capture(
        module.vsd_gradient,
        given["noise_pred"],
        given["noise_pred_phi"],
        grad_scale=given["grad_scale"],
    )


REACH = {
    LOSS: {n: reach_phase for n in range(1, 6)},
    CUTOUT: {1: reach_cutout},
    DDPM: {1: reach_ddpm_step, 2: reach_ddpm_step, 3: reach_ddpm_step},
    DDIM: {1: reach_ddim_step, 2: reach_ddim_step, 3: reach_dps},
    SDS_STEP: {1: reach_sds_step},
    SDS_UTILS: {1: reach_sds_gradient, 2: reach_weights, 3: reach_vsd_gradient},
}
