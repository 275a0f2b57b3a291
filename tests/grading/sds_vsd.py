"""Checks of the SDS/VSD blocks (Part B, Secs. 7-8): the gradients of Eqs. (16)-(17) in
Diffusion_homework/utils/sds_vsd_utils.py #1 and #3, the weights w(t) of Eqs. (14)-(15) in #2,
and the weighting w(t) * grad_ in Diffusion_homework/execute_SDS_VSD.py #1.

Each block is graded as the function its entry in tools/todos.py describes: the judge hands it
the names in scope, the worker runs it inside the program's own function (`sds_gradient`,
`sds_weights`, `vsd_gradient`, `sds_vsd_step`; tests/grading/reach.py), and the judge compares what the block leaves
with closed forms. The inputs it was given must come back unchanged where the program uses them
again. `sds_vsd_step` is graded as the program runs it: one latent, batch 1.
"""

import torch

from tools.judge import Fail, check

SDS_STEP = "Diffusion_homework/execute_SDS_VSD.py"
UTILS = "Diffusion_homework/utils/sds_vsd_utils.py"
SDS_VSD = f"{SDS_STEP}#1"
SDS_GRAD = f"{UTILS}#1"
WEIGHTS = f"{UTILS}#2"
VSD_GRAD = f"{UTILS}#3"


# ---------------------------------------------------------------- judge side: inputs and oracles


def randn(*shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def sd_alphas_cumprod():
    """alpha-bar of Stable Diffusion's training schedule: scaled linear betas 0.00085..0.012."""
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float32) ** 2
    return torch.cumprod(1 - betas, dim=0)


def linear_alphas_cumprod():
    """A linear schedule (DDPM's), so that nothing specific to SD's betas can pass."""
    return torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000), dim=0)


def cosine_alphas_cumprod(steps=1000, s=0.008):
    """The cosine schedule of improved DDPM, another shape of alpha-bar."""
    x = torch.linspace(0, steps, steps + 1, dtype=torch.float64)
    f = torch.cos((x / steps + s) / (1 + s) * torch.pi / 2) ** 2
    return (f[1:] / f[0]).clamp(min=1e-5).float()


def same(a, b):
    return a.shape == b.shape and torch.equal(a, b)


def tensor_result(out, name, shape, what):
    """The block's result as a tensor of `shape`, or a Fail that says what it got instead."""
    if out.kind(name) != "tensor":
        value = out[name]  # fails for a missing name or a value that is not a number
        raise Fail(
            f"{name} must be a tensor of {what} {list(shape)}, got the number {float(value):g}."
        )
    value = out[name]
    if tuple(value.shape) != tuple(shape):
        raise Fail(f"{name} must have the shape of {what} {list(shape)}, got {list(value.shape)}.")
    return value


def unchanged(out, sent, names, hint):
    """The inputs the program uses again must come back as they were sent."""
    for name in names:
        if not same(out.after(name), sent[name]):
            raise Fail(f"The block changed {name} in place; {hint}")


def recognize(got, expected, wrong_answers):
    """The first wrong answer the block's value matches (and the reference does not)."""
    for what, value in wrong_answers.items():
        if value.shape != expected.shape or torch.allclose(value, expected, rtol=1e-3):
            continue
        if got.shape == value.shape and torch.allclose(got, value, rtol=1e-4, atol=1e-7):
            return what
    return None


# ---------------------------------------------------------------- utils/sds_vsd_utils.py #1, #3


def check_scaled_difference(block, shape, grad_scale, seed, second, equation):
    """grad_ must be grad_scale * (noise_pred - second), a new tensor of the latents' shape,
    leaving both inputs as they were."""
    sent = {"noise_pred": randn(*shape, seed=seed), second: randn(*shape, seed=seed + 1)}
    out = block(inputs={**{k: v.clone() for k, v in sent.items()}, "grad_scale": grad_scale})
    unchanged(out, sent, ("noise_pred", second), "compute grad_ as a new tensor.")
    grad = tensor_result(out, "grad_", shape, "the latents")
    noise_pred, other = sent["noise_pred"], sent[second]
    expected = grad_scale * (noise_pred - other)
    wrong_answers = {
        f"the wrong sign: {equation} uses noise_pred - {second}": -expected,
        f"missing grad_scale: expected grad_scale * (noise_pred - {second})": noise_pred - other,
        f"grad_scale on noise_pred only: scale the whole difference noise_pred - {second}": (
            grad_scale * noise_pred - other
        ),
    }
    mistake = recognize(grad, expected, wrong_answers)
    if mistake:
        raise Fail(f"grad_ has {mistake}.")
    if not torch.allclose(grad, expected, rtol=1e-5, atol=1e-6):
        raise Fail(
            f"grad_ is not grad_scale * (noise_pred - {second}), {equation}, for a batch of "
            f"{shape[0]} with grad_scale = {grad_scale:g}."
        )


GRADIENT_CASES = [((3, 4, 5, 7), 0.37, 10), ((1, 4, 6, 3), 2.5, 12), ((1, 4, 64, 64), 1.0, 14)]
GRADIENT_IDS = ["batch3-scale0.37", "batch1-scale2.5", "program-shape-scale1"]


@check(SDS_GRAD, params=GRADIENT_CASES, ids=GRADIENT_IDS)
def sds_gradient_is_grad_scale_times_noise_residual(block, shape, grad_scale, seed):
    check_scaled_difference(block, shape, grad_scale, seed, "noise", "Eq. (16)")


@check(VSD_GRAD, params=GRADIENT_CASES, ids=GRADIENT_IDS)
def vsd_gradient_is_grad_scale_times_pretrained_minus_lora(block, shape, grad_scale, seed):
    check_scaled_difference(block, shape, grad_scale, seed + 10, "noise_pred_phi", "Eq. (17)")


# ---------------------------------------------------------------- utils/sds_vsd_utils.py #2 (w(t))


def weights_for(block, t, alphas_cumprod):
    """The block's w(t), flattened to one value per timestep; checks it left its inputs alone."""
    sent = {
        "t": t,
        "alphas_cumprod": alphas_cumprod,
        "sqrt_1m_alphas_cumprod": torch.sqrt(1.0 - alphas_cumprod),
    }
    out = block(inputs={k: v.clone() for k, v in sent.items()})
    unchanged(
        out,
        sent,
        ("t", "alphas_cumprod"),
        "the program uses alphas_cumprod again to add noise: index it, never assign into it.",
    )
    if out.kind("weight") != "tensor":
        value = out["weight"]
        raise Fail(f"weight must be a tensor (one value per timestep), got {float(value):g}.")
    weight = out["weight"]
    if weight.numel() != t.numel() or tuple(weight.shape) not in (
        tuple(t.shape),
        (t.numel(), 1, 1, 1),
    ):
        raise Fail(
            f"weight must hold one value per timestep (shape {list(t.shape)} or "
            f"[{t.numel()}, 1, 1, 1]), got {list(weight.shape)}."
        )
    return weight.reshape(-1)


def check_weights(weight, t, alphas_cumprod):
    alpha_bar = alphas_cumprod[t]
    expected = 1 - alpha_bar
    wrong_answers = {
        "sigma_t = sqrt(1 - alpha-bar_t); Eq. (14) squares it": (1 - alpha_bar).sqrt(),
        "alpha-bar_t; w(t) = 1 - alpha-bar_t": alpha_bar,
        "1 - alpha-bar_t^2; in Eq. (15) alpha_t is sqrt(alpha-bar_t)": 1 - alpha_bar**2,
        "1 - alpha-bar_(t-1); index alphas_cumprod with t itself": 1 - alphas_cumprod[t - 1],
        "(1 - alpha-bar_t) / alpha-bar_t, the inverse SNR; w(t) = 1 - alpha-bar_t": (
            (1 - alpha_bar) / alpha_bar
        ),
    }
    mistake = recognize(weight, expected, wrong_answers)
    if mistake:
        raise Fail(f"weight is {mistake}.")
    if not torch.allclose(weight.to(expected.dtype), expected, rtol=1e-4, atol=1e-7):
        shown = t.tolist() if t.numel() <= 8 else f"{t.numel()} timesteps"
        raise Fail(
            f"weight must be w(t) = 1 - alpha-bar_t at t = {shown}: expected "
            f"{expected[:8].tolist()}, got {weight[:8].tolist()}"
            + (" (first 8 shown)." if t.numel() > 8 else ".")
        )


@check(WEIGHTS)
def weights_are_one_minus_alpha_bar_for_a_batch_of_timesteps(block):
    alphas_cumprod = sd_alphas_cumprod()
    t = torch.tensor([20, 979, 500])
    check_weights(weights_for(block, t, alphas_cumprod), t, alphas_cumprod)


@check(WEIGHTS)
def weights_at_single_and_end_timesteps_of_other_schedules(block):
    for alphas_cumprod in (linear_alphas_cumprod(), cosine_alphas_cumprod()):
        for t in (torch.tensor([1]), torch.tensor([999, 0, 250, 21, 700])):
            check_weights(weights_for(block, t, alphas_cumprod), t, alphas_cumprod)


@check(WEIGHTS)
def weights_for_every_timestep(block):
    alphas_cumprod = sd_alphas_cumprod()
    t = torch.arange(1000)
    weight = weights_for(block, t, alphas_cumprod)
    check_weights(weight, t, alphas_cumprod)
    if not bool((weight[1:] > weight[:-1]).all()):
        raise Fail("w(t) = 1 - alpha-bar_t must grow with t.")


# ---------------------------------------------------------------- execute_SDS_VSD.py #1 (w(t) grad_)


def random_weights():
    """Distinct weights for every timestep, none near 1: any other index or power shows."""
    return torch.rand(1000, generator=torch.Generator().manual_seed(5)) + 0.1


STEP_CASES = {
    # the program's case: w(t) = 1 - alpha-bar_t of SD, latents [1, 4, 64, 64]
    "sd-weights-program-shape": (lambda: 1 - sd_alphas_cumprod(), 500, (1, 4, 64, 64), 30),
    "random-weights-low-t": (random_weights, 20, (1, 4, 5, 7), 31),
    "random-weights-high-t": (random_weights, 979, (1, 4, 6, 2), 32),
    "negative-weights": (lambda: -torch.linspace(0.5, 2.0, 1000), 123, (1, 4, 4, 4), 33),
}


@check(SDS_VSD, params=list(STEP_CASES), ids=list(STEP_CASES))
def step_weights_the_gradient_by_w_of_t(block, case):
    make_weights, step, shape, seed = STEP_CASES[case]
    loss_weights, t = make_weights(), torch.tensor([step])
    sent = {"grad_": randn(*shape, seed=seed), "loss_weights": loss_weights, "t": t}
    out = block(inputs={k: v.clone() for k, v in sent.items()})
    unchanged(
        out,
        sent,
        ("loss_weights", "t"),
        "the program uses them again at every step: compute a new tensor.",
    )
    grad = tensor_result(out, "grad_", shape, "the latents")
    original = sent["grad_"]
    w = loss_weights[t].view(-1, 1, 1, 1)
    expected = w * original
    wrong_answers = {
        "not weighted: grad_ must become w(t) * grad_ = loss_weights[t] * grad_": original,
        "scaled by sqrt(w(t)): use w(t) = loss_weights[t] itself": w.abs().sqrt() * original,
        "scaled by w(t)^2: use w(t) = loss_weights[t] once": w**2 * original,
        "divided by w(t): multiply by it": original / w,
        "scaled by 1 - loss_weights[t]: loss_weights already holds w(t) = 1 - alpha-bar_t": (
            (1 - w) * original
        ),
        "scaled by w(t - 1): index loss_weights with t itself": (
            loss_weights[t - 1].view(-1, 1, 1, 1) * original
        ),
        "scaled by w(t + 1): index loss_weights with t itself": (
            loss_weights[t + 1].view(-1, 1, 1, 1) * original
        ),
        "scaled by loss_weights[0]: index loss_weights with this step's t": (
            loss_weights[0] * original
        ),
    }
    mistake = recognize(grad, expected, wrong_answers)
    if mistake:
        raise Fail(f"grad_ is {mistake}.")
    if not torch.allclose(grad, expected, rtol=1e-5, atol=1e-6):
        raise Fail(
            f"grad_ must be w(t) * grad_ with w(t) = loss_weights[t] (here t = {step}, "
            f"w(t) = {float(loss_weights[step]):.6g}), broadcast over the latents {list(shape)}."
        )
