"""Checks of DPS (Part B, Sec. 6): TODO #3 of scheduler/DDIM_scheduler.py, Eq. (11).

TODO #3 lives in DDIMScheduler.dps_correction, which step(use_DPS=True) calls. The worker calls
it directly (no other block of the file runs, so no stand-ins): x_t requires grad, and x_0 is
computed from it through a small conv net of fixed weights that stands for the UNet's eps, as
the sampling loop does. The judge sends y and the mask as inputs, to see in-place edits. The judge computes, with autograd on the reference formula,
    x_(t-1) - DPS_scale * grad_(x_t) sum_i ||y_i - mask_i * x_0,i(x_t)||_2
(per-image unsquared norms, the gradient taken w.r.t. x_t through the net).
One norm over the whole tensor is Eq. (11) for one image: it earns every check but the one of a
batch.
"""

import torch
import torch.nn.functional as F  # noqa: N812
from diffusers import DDIMScheduler as OracleDDIM

from tools.judge import Fail, check
from tools.worker import capture

PATH = "Diffusion_homework/scheduler/DDIM_scheduler.py"
TODO3 = f"{PATH}#3"
CONFIG = dict(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear")


class Inpainting:
    """The measurement operator A of execute_DPS.py: keep the observed pixels."""

    def forward(self, x, mask):
        return x * mask


def eps_net(x_t, t):
    """eps_theta(x_t, t): two 3x3 convolutions with fixed random weights, mixing pixels and
    channels as a UNet does (the same function in the judge and in the worker)."""
    g = torch.Generator().manual_seed(0)
    w1, b1 = 0.3 * torch.randn(8, 3, 3, 3, generator=g), torch.randn(8, generator=g)
    w2 = 0.3 * torch.randn(3, 8, 3, 3, generator=g)
    hidden = torch.tanh(F.conv2d(x_t, w1, b1 * t / 1000, padding=1))
    return F.conv2d(hidden, w2, padding=1)


def x0_from(x_t, t, alpha_bar, clip):
    """x_0 of Eq. (10) from the net's eps (clipped to [-1, 1] when clip), and eps."""
    eps = eps_net(x_t, t)
    x0 = (x_t - (1 - alpha_bar).sqrt() * eps) / alpha_bar.sqrt()
    return (x0.clamp(-1, 1) if clip else x0), eps


def previous(x0, eps):
    """Stands for Eq. (9)'s x_(t-1); built from x_t like it."""
    return 0.9 * x0 + 0.3 * eps


# ----------------------------------------------------------------------------- in the worker


def reach_dps(module, case):
    """DDIMScheduler.dps_correction on a fresh graph from x_t through the net; y and the mask
    are the judge's inputs themselves, so that it sees whether the block changed them."""
    args, inputs = case["args"], case["inputs"]
    scheduler = module.DDIMScheduler(**CONFIG)
    sample = args["x_t"].clone().requires_grad_(True)
    x0, eps = x0_from(sample, args["t"], scheduler.alphas_cumprod[args["t"]], args["clip"])
    return capture(
        scheduler.dps_correction,
        sample,
        x0,
        previous(x0, eps),
        inputs["measurement"],
        Inpainting(),
        inputs["mask"],
        args["scale"],
    )


REACH = {PATH: {3: reach_dps}}

# ----------------------------------------------------------------------------- the oracle

ALPHAS_CUMPROD = OracleDDIM(**CONFIG).alphas_cumprod


def problem(shape, seed=0):
    """x_t, a measurement y = mask * x + 0.05 n, and a pixel mask (1 = observed) of about half."""
    g = torch.Generator().manual_seed(seed)
    x_t = torch.randn(shape, generator=g)
    clean = torch.rand(shape, generator=g) * 2 - 1
    mask = (torch.rand(shape[0], 1, *shape[2:], generator=g) > 0.5).float().expand(shape)
    return x_t, mask * clean + 0.05 * torch.randn(shape, generator=g), mask.contiguous()


def expected(x_t, t, y, mask, clip, scale, norms):
    """x_(t-1) before the update and after it; `norms` reduces the per-image norms [B]."""
    x = x_t.clone().requires_grad_(True)
    x0, eps = x0_from(x, t, ALPHAS_CUMPROD[t], clip)
    misfit = norms(torch.sqrt(((y - mask * x0) ** 2).flatten(1).sum(1)))
    (grad,) = torch.autograd.grad(misfit, x)
    prev = previous(x0, eps).detach()
    return prev, prev - scale * grad


def run(block, shape, t, clip=False, scale=0.5, seed=0):
    """The block's x_(t-1) and the oracle's (before and after the update)."""
    x_t, y, mask = problem(shape, seed)
    out = block(
        inputs={"measurement": y, "mask": mask},
        extras=("sample",),
        x_t=x_t,
        t=t,
        clip=clip,
        scale=scale,
    )
    after = {
        "sample": out["sample"],
        "measurement": out.after("measurement"),
        "mask": out.after("mask"),
    }
    for name, sent in (("sample", x_t), ("measurement", y), ("mask", mask)):
        if not torch.equal(after[name], sent):
            raise Fail(f"The block changed `{name}` in place; compute new tensors instead.")
    result = out["prev_sample"]
    if tuple(result.shape) != tuple(shape):
        raise Fail(f"prev_sample must keep the shape {tuple(shape)}, got {tuple(result.shape)}.")
    prev, want = expected(x_t, t, y, mask, clip, scale, torch.sum)
    return result, want, prev, (x_t, t, y, mask, clip, scale)


def agrees(result, want, prev):
    correction, wanted = result - prev, want - prev
    atol = 1e-6 * (1 + float(wanted.abs().max()))
    return torch.allclose(correction, wanted, rtol=1e-3, atol=atol)


def assert_dps(result, want, prev, message):
    if agrees(result, want, prev):
        return
    correction, wanted = (result - prev).double(), (want - prev).double()
    ratio = (correction * wanted).sum() / (wanted * wanted).sum()
    raise Fail(
        f"{message}: the DPS correction added to prev_sample is wrong (its projection on the "
        f"expected one is {float(ratio):.3g} times it; -1 means the wrong sign, other factors a "
        "wrong scale or a squared norm). Expected prev_sample - DPS_scale * grad w.r.t. x_t "
        "(sample) of ||y - operator.forward(pred_original_sample, mask)||_2"
    )


@check(TODO3, weight=2, params=[900, 500, 20])
def dps_one_image(block, t):
    result, want, prev, _ = run(block, (1, 3, 8, 8), t)
    assert_dps(result, want, prev, f"t={t}, one image")


@check(TODO3, weight=2)
def dps_batch_of_three_non_square_images_each_with_its_own_norm(block):
    result, want, prev, setup = run(block, (3, 3, 8, 12), 500, seed=1)
    if agrees(result, want, prev):
        return
    _, whole = expected(*setup, lambda norms: norms.square().sum().sqrt())
    if agrees(result, whole, prev):
        raise Fail(
            "batch of 3 (8x12 images): one norm over the whole batch couples the images, so "
            "each image's update depends on the others; take each image's norm over (C, H, W) "
            "and sum the 3 norms (your form is right for one image and earns those checks)"
        )
    _, mean = expected(*setup, torch.mean)
    if agrees(result, mean, prev):
        raise Fail(
            "batch of 3 (8x12 images): the mean of the per-image norms divides each image's "
            "update by the batch size; sum the norms, so each image gets the update it would "
            "get alone"
        )
    assert_dps(
        result,
        want,
        prev,
        "batch of 3 (8x12 images): take each image's norm over (C, H, W) and sum the 3 norms",
    )


@check(TODO3)
def dps_with_clipped_x0(block):
    result, want, prev, _ = run(block, (1, 3, 8, 8), 700, clip=True, seed=2)
    assert_dps(result, want, prev, "pred_original_sample clipped to [-1, 1]")


@check(TODO3)
def dps_uses_the_given_DPS_scale(block):  # noqa: N802
    result, want, prev, _ = run(block, (1, 3, 8, 8), 300, scale=0.2, seed=3)
    assert_dps(result, want, prev, "DPS_scale = 0.2 (use the DPS_scale variable, not 0.5)")


@check(TODO3)
def dps_gradient_is_taken_through_the_network(block):
    # Far from the end the net's Jacobian dominates dx_0/dx_t; a gradient w.r.t. x_0 misses it.
    result, want, prev, _ = run(block, (1, 3, 8, 8), 980, seed=4)
    assert_dps(result, want, prev, "t=980: differentiate w.r.t. x_t (sample), not x_0")
