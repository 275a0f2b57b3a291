"""Checks of DPS (Part B, Sec. 6): TODO #3 of scheduler/DDIM_scheduler.py, Eq. (11).

TODO #3 lives in DDIMScheduler.dps_correction, which step(use_DPS=True) calls. The worker calls
it directly (tests/grading/reach.py; no other block of the file runs, so no stand-ins): x_t
requires grad, and x_0 and x_(t-1) are computed from it through a small conv net that stands
for the UNet and the sampler, as the sampling loop does; the judge chooses the net's numbers and
sends them with the case (`network`), and runs the same map (reach.py `dps_map`) for its
oracle. The judge sends y and the mask as inputs, to see in-place edits. It computes, with
autograd on the reference formula,
    x_(t-1) - DPS_scale * grad_(x_t) sum_i ||y_i - mask_i * x_0,i(x_t)||_2
(per-image unsquared norms, the gradient taken w.r.t. x_t through the net).
One norm over the whole tensor is Eq. (11) for one image: it earns every check but the one of a
batch.
"""

import importlib.util
from pathlib import Path

import torch

from tools.judge import Fail, check

PATH = "Diffusion_homework/scheduler/DDIM_scheduler.py"
TODO3 = f"{PATH}#3"
CONFIG = dict(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear")


# ----------------------------------------------------------------------------- the oracle


def _map_of_the_worker():
    """reach.py's dps_map: the judge differentiates the very map the worker runs."""
    spec = importlib.util.spec_from_file_location(
        "grading_reach_for_dps", Path(__file__).with_name("reach.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dps_map


dps_map = _map_of_the_worker()


def network(t):
    """The numbers of the net from x_t to x_0 and x_(t-1) at timestep t (sent as data): fixed
    random 3x3 convolutions, a bias that grows with t, and a net's share in x_0 that grows with
    t, so that far from the end its Jacobian dominates dx_0/dx_t."""
    g = torch.Generator().manual_seed(0)
    w1, b1 = 0.3 * torch.randn(8, 3, 3, 3, generator=g), torch.randn(8, generator=g)
    w2 = 0.3 * torch.randn(3, 8, 3, 3, generator=g)
    return {
        "w1": w1,
        "b1": b1 * t / 1000,
        "w2": w2,
        "x0": (1 + t / 400, -(0.2 + t / 250)),
        "prev": (0.9, 0.3),
    }


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
    x0, prev = dps_map(x, network(t), clip)
    misfit = norms(torch.sqrt(((y - mask * x0) ** 2).flatten(1).sum(1)))
    (grad,) = torch.autograd.grad(misfit, x)
    prev = prev.detach()
    return prev, prev - scale * grad


def run(block, shape, t, clip=False, scale=0.5, seed=0):
    """The block's x_(t-1) and the oracle's (before and after the update)."""
    x_t, y, mask = problem(shape, seed)
    out = block(
        inputs={"measurement": y, "mask": mask},
        extras=("sample",),
        x_t=x_t,
        net=network(t),
        clip=clip,
        scale=scale,
        config=CONFIG,
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
