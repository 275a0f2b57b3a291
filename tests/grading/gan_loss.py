"""Checks of GAN_homework/training/loss.py, TODOs #1-#5 (handout Eqs. (1)-(3)).

Each block is graded as the function its entry in tools/todos.py describes: the judge hands it
the logits (or images, or input gradients) in float64, the worker runs it inside a real phase
of `StyleGAN2Loss.accumulate_gradients` (tests/grading/reach.py, with stand-in networks), and
the judge compares the value the block leaves (a per-sample tensor or its mean: the program
takes the mean either way) and the gradient that the program's backward() sends into the
logits with autograd on the reference formula. The
gradient with respect to the logits (or to dD(x)/dx for R1) is what reaches the networks'
parameters by the chain rule, through code that is not a TODO.
"""

import torch
import torch.nn.functional as F

from tools.judge import Fail, check

LOSS = "GAN_homework/training/loss.py"
TODO = LOSS + "#{}"
SHAPE = (3, 5, 7)  # C, H, W of the images: non-square on purpose


# What the blocks that are not graded set, so that a phase reaches the graded one: sent with
# every case as data (forms of tools/worker.py STAND_IN_FORMS, read against the program's names).
# The program calls backward() on the losses, so they stay on the graph of the logits.
OTHER_BLOCKS = {
    "loss_Gmain": ("mean", "gen_logits"),
    "loss_Dgen": ("mean", "gen_logits"),
    "correct_input_to_discriminator_in_discriminator_loss": ("name", "real_img"),
    "loss_Dreal": ("mean", "real_logits"),
    "loss_Dr1": ("mean", "r1_grads"),
}


# ---------------------------------------------------------------- judge side: inputs and checks


def logits(batch, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn((batch, 1), generator=gen, dtype=torch.float64) * 3


def images(batch, seed, shape=SHAPE):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand((batch, *shape), generator=gen, dtype=torch.float64) * 2 - 1


def _close(a, b):
    return torch.allclose(torch.as_tensor(a), torch.as_tensor(b), rtol=1e-6, atol=1e-9)


def batch_mean(out, name, batch):
    """The value the program takes from the block: the mean of a per-sample loss ([B], [B, 1])
    or the scalar itself; any other shape stops the program."""
    value = out[name]
    if value.numel() not in (1, batch):
        raise Fail(
            f"{name} has shape {tuple(value.shape)}: it should hold one value per sample "
            f"([{batch}] or [{batch}, 1]) or be their mean (a scalar)."
        )
    return value.double().mean()


def check_value(name, got, expected, formula, wrong_answers):
    """Compare the block's loss with the reference and name the mistake when one is recognized."""
    if _close(got, expected):
        return
    hint = next((why for why, value in wrong_answers.items() if _close(got, value)), "")
    raise Fail(
        f"{name} is wrong: expected the batch mean of {formula} = {float(expected):.6f}, "
        f"got {float(got):.6f}." + (f" It looks like {hint}." if hint else "")
    )


def check_gradient(out, name, wrt, expected, formula):
    """The gradient the program's backward() sends into `wrt` must equal the reference."""
    got = out.grad(name, wrt)
    if got is None:
        raise Fail(
            f"No gradient of {name} reaches {wrt}: keep the loss differentiable "
            "(no .detach(), .item(), .data, numpy or torch.no_grad())."
        )
    if _close(got, expected):
        return
    hint = ""
    ratio = (got / expected).flatten()
    if _close(got, -expected):
        hint = " The sign is flipped."
    elif len(ratio) > 1 and torch.allclose(ratio, ratio[0].expand_as(ratio)):
        hint = f" It is {float(ratio[0]):.3g} times the expected one (a sum instead of a mean?)."
    raise Fail(f"The gradient of {name} with respect to {wrt} is wrong: expected {formula}.{hint}")


def run_loss(block, name, wrt, phase, batch, seed, **args):
    x = logits(batch, seed)
    out = block(
        inputs={wrt: x},
        requires_grad=(wrt,),
        grads=((name, wrt, "mean"),),
        stand_ins=OTHER_BLOCKS,
        phase=phase,
        batch=batch,
        shape=SHAPE,
        **args,
    )
    return x, out


# ---------------------------------------------------------------- TODO #1: generator loss


@check(TODO.format(1), params=[1, 3, 5])
def generator_loss_matches_eq1(block, batch):
    x, out = run_loss(block, "loss_Gmain", "gen_logits", "Gmain", batch, seed=batch)
    check_value(
        "loss_Gmain",
        batch_mean(out, "loss_Gmain", batch),
        F.softplus(-x).mean(),
        "softplus(-D(G(z))) = log(1 + exp(-D(G(z))))",
        {
            "the sign is flipped: softplus(+D(G(z))) is D's loss on fakes": F.softplus(x).mean(),
            "log-sigmoid without the minus: -logsigmoid(D(G(z))) is the loss": F.logsigmoid(
                x
            ).mean(),
            "the saturating loss log(1 - sigmoid(D(G(z))))": -F.softplus(x).mean(),
            "a sum over the batch, not a per-sample value or a mean": F.softplus(-x).sum(),
        },
    )


@check(TODO.format(1), params=[1, 5])
def generator_loss_gradient_reaches_the_logits(block, batch):
    x, out = run_loss(block, "loss_Gmain", "gen_logits", "Gmain", batch, seed=10 + batch)
    batch_mean(out, "loss_Gmain", batch)
    check_gradient(
        out, "loss_Gmain", "gen_logits", -torch.sigmoid(-x) / batch, "-sigmoid(-D(G(z))) / B"
    )


# ---------------------------------------------------------------- TODO #2: D's loss on fakes


@check(TODO.format(2), params=[1, 3, 5])
def discriminator_fake_term_matches_eq2(block, batch):
    x, out = run_loss(block, "loss_Dgen", "gen_logits", "Dmain", batch, seed=20 + batch)
    check_value(
        "loss_Dgen",
        batch_mean(out, "loss_Dgen", batch),
        F.softplus(x).mean(),
        "softplus(D(G(z))) = log(1 + exp(D(G(z))))",
        {
            "the sign is flipped: softplus(-D(G(z))) is G's loss": F.softplus(-x).mean(),
            "log-sigmoid without a minus: -logsigmoid(-D(G(z))) is the loss": F.logsigmoid(
                -x
            ).mean(),
            "-softplus(D(G(z))), which D would minimize the wrong way": -F.softplus(x).mean(),
            "a sum over the batch, not a per-sample value or a mean": F.softplus(x).sum(),
        },
    )


@check(TODO.format(2), params=[1, 5])
def discriminator_fake_term_gradient_reaches_the_logits(block, batch):
    x, out = run_loss(block, "loss_Dgen", "gen_logits", "Dmain", batch, seed=30 + batch)
    batch_mean(out, "loss_Dgen", batch)
    check_gradient(out, "loss_Dgen", "gen_logits", torch.sigmoid(x) / batch, "sigmoid(D(G(z))) / B")


# ---------------------------------------------------------------- TODO #4: D's loss on reals


@check(TODO.format(4), params=[1, 3, 5])
def discriminator_real_term_matches_eq2(block, batch):
    x, out = run_loss(block, "loss_Dreal", "real_logits", "Dmain", batch, seed=40 + batch)
    check_value(
        "loss_Dreal",
        batch_mean(out, "loss_Dreal", batch),
        F.softplus(-x).mean(),
        "softplus(-D(x)) = log(1 + exp(-D(x)))",
        {
            "the sign is flipped: softplus(+D(x)) is the loss on fakes": F.softplus(x).mean(),
            "log-sigmoid without the minus: -logsigmoid(D(x)) is the loss": F.logsigmoid(x).mean(),
            "-softplus(-D(x)), which D would minimize the wrong way": -F.softplus(-x).mean(),
            "a sum over the batch, not a per-sample value or a mean": F.softplus(-x).sum(),
        },
    )


@check(TODO.format(4), params=[1, 5])
def discriminator_real_term_gradient_reaches_the_logits(block, batch):
    x, out = run_loss(block, "loss_Dreal", "real_logits", "Dmain", batch, seed=50 + batch)
    batch_mean(out, "loss_Dreal", batch)
    check_gradient(
        out, "loss_Dreal", "real_logits", -torch.sigmoid(-x) / batch, "-sigmoid(-D(x)) / B"
    )


# ---------------------------------------------------------------- TODO #3: the real term's input

CHOSEN = "correct_input_to_discriminator_in_discriminator_loss"


def check_real_input(out, real_img, gen_img):
    chosen = out[CHOSEN]
    if gen_img is not None and chosen.shape == gen_img.shape and torch.equal(chosen, gen_img):
        raise Fail("The real term of Eq. (2) was fed G's images: its input x must be real_img.")
    if chosen.shape != real_img.shape or not torch.equal(chosen, real_img):
        raise Fail(
            f"{CHOSEN} is not real_img: hand D the real images as they are (run_D applies "
            "DiffAugment itself, so do not augment or change them)."
        )
    if not torch.equal(out.after("real_img"), real_img):
        raise Fail("real_img itself was changed: hand D the real images without editing them.")


@check(TODO.format(3), weight=2, params=[1, 3])
def real_term_reads_the_real_images(block, batch):
    real_img, gen_img = images(batch, seed=60 + batch), images(batch, seed=70 + batch)
    out = block(
        inputs={"real_img": real_img, "gen_img": gen_img},
        stand_ins=OTHER_BLOCKS,
        phase="Dmain",
        shape=SHAPE,
        batch=batch,
        policy="color,translation",  # run_D augments: the block must not do it again
    )
    check_real_input(out, real_img, gen_img)


@check(TODO.format(3))
def r1_reads_the_real_images(block):
    real_img = images(3, seed=80)
    out = block(
        inputs={"real_img": real_img}, stand_ins=OTHER_BLOCKS, phase="Dreg", batch=3, shape=SHAPE
    )
    check_real_input(out, real_img, None)


# ---------------------------------------------------------------- TODO #5: R1


def r1_inputs(batch, seed, shape=SHAPE):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn((batch, *shape), generator=gen, dtype=torch.float64)


def run_r1(block, batch, gamma, seed, shape=SHAPE):
    grads = r1_inputs(batch, seed, shape)
    out = block(
        inputs={"r1_grads": grads},
        requires_grad=("r1_grads",),
        grads=(("loss_Dr1", "r1_grads", "mean"),),
        stand_ins=OTHER_BLOCKS,
        phase="Dreg",
        batch=batch,
        r1_gamma=gamma,
        shape=shape,
    )
    return grads, out


R1_CASES = [(1, 3.0), (3, 3.0), (5, 0.5)]


@check(TODO.format(5), params=R1_CASES)
def r1_penalty_matches_eq3(block, batch, gamma):
    grads, out = run_r1(block, batch, gamma, seed=90 + batch)
    sq = grads.pow(2).flatten(1).sum(1)
    pixels = grads[0].numel()
    check_value(
        "loss_Dr1",
        batch_mean(out, "loss_Dr1", batch),
        (gamma / 2 * sq).mean(),
        "gamma/2 * ||grad_x D(x)||^2 (squared norm summed over C, H, W)",
        {
            "the factor 1/2 is missing": (gamma * sq).mean(),
            "gamma is missing": (sq / 2).mean(),
            "gamma = 10 is hard-coded: use self.r1_gamma": (5.0 * sq).mean(),
            "the norm is not squared": (gamma / 2 * sq.sqrt()).mean(),
            "the squares are averaged over pixels instead of summed": (
                gamma / 2 * sq / pixels
            ).mean(),
            "the squared norm is summed over the batch": (gamma / 2 * sq).sum(),
            "a norm over C only, then averaged over H and W": (
                gamma / 2 * grads.pow(2).sum(1).mean(dim=[1, 2])
            ).mean(),
        },
    )


@check(TODO.format(5), weight=2, params=R1_CASES)
def r1_gradient_reaches_the_discriminator(block, batch, gamma):
    grads, out = run_r1(block, batch, gamma, seed=100 + batch)
    batch_mean(out, "loss_Dr1", batch)
    check_gradient(
        out, "loss_Dr1", "r1_grads", gamma * grads / batch, "gamma * grad_x D(x) / B per sample"
    )


@check(TODO.format(5))
def r1_on_a_second_image_size(block):
    shape = (2, 6, 4)
    grads, out = run_r1(block, 3, 3.0, seed=110, shape=shape)
    expected = (1.5 * grads.pow(2).flatten(1).sum(1)).mean()
    got = batch_mean(out, "loss_Dr1", 3)
    assert _close(got, expected), (
        f"loss_Dr1 is wrong for {shape[1]}x{shape[2]} images with {shape[0]} channels: expected "
        f"{float(expected):.6f}, got {float(got):.6f}. Sum the squares over C, H and W."
    )
    check_gradient(out, "loss_Dr1", "r1_grads", 3.0 * grads / 3, "gamma * grad_x D(x) / B")
