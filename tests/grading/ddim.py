"""Checks of the DDIM scheduler (Part B, Sec. 5): TODO #1 and #2 of scheduler/DDIM_scheduler.py.

Each block is graded as the function its entry in tools/todos.py describes, inside the real
DDIMScheduler.step(): the judge sends the names in the block's scope and reads its results.
The alphas come from diffusers' own DDIMScheduler (the independent oracle):
- #1 gets alpha-bar_t, alpha-bar_(t-1), x_t and eps; beta_prod_t and the predicted x_0 are
  compared with Eqs. (9)-(10);
- #2 gets the same, x_0 as the program has it (clipped when clip_sample) and sigma_t (eta = 0
  and eta > 0); x_(t-1) is compared with Eq. (9) without its random-noise term.
So #2's score does not depend on #1: the worker (tests/grading/reach.py) runs step() with #1's
names taken from what the judge sent. Schedules: all 1000 steps, and 50 strided steps with
'leading' and 'trailing' spacing; after the last step alpha-bar is 1 (set_alpha_to_one) or
alpha-bar_0. TODO #3 (DPS) is checked in dps.py.
"""

import torch
from diffusers import DDIMScheduler as OracleDDIM

from tools.judge import Fail, assert_close, check

PATH = "Diffusion_homework/scheduler/DDIM_scheduler.py"
TODO1, TODO2 = f"{PATH}#1", f"{PATH}#2"

CONFIG = dict(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear")
SHAPES = [(1, 3, 8, 8), (3, 3, 6, 10)]  # batch 1; odd batch with non-square images
SHAPE_IDS = ["batch 1", "batch 3 of 6x10"]

# ----------------------------------------------------------------------------- the oracle


def oracle(steps, spacing, alpha_to_one=True):
    scheduler = OracleDDIM(**CONFIG, timestep_spacing=spacing, set_alpha_to_one=alpha_to_one)
    scheduler.set_timesteps(steps)
    return scheduler


def alphas(scheduler, t, eta):
    """alpha-bar_t, alpha-bar_(t-1) and sigma_t at timestep t as 0-dim float64 tensors, and
    prev_t: the next timestep of the schedule, -1 after the last."""
    schedule = [int(s) for s in scheduler.timesteps]
    index = schedule.index(t)
    prev_t = schedule[index + 1] if index + 1 < len(schedule) else -1
    a_t = scheduler.alphas_cumprod[t].double()
    a_prev = (
        scheduler.alphas_cumprod[prev_t] if prev_t >= 0 else scheduler.final_alpha_cumprod
    ).double()
    variance = (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)  # Eq. (16) of DDIM
    return a_t, a_prev, eta * variance.sqrt(), prev_t


def tensors(shape, t, seed=0):
    """x_t (about the spread of a noisy image) and a model output eps ~ N(0, I)."""
    g = torch.Generator().manual_seed(seed * 1000 + t)
    return 1.5 * torch.randn(shape, generator=g), torch.randn(shape, generator=g)


def spread(items, count):
    """About `count` of the items, evenly spread, always with the first and the last two."""
    keep = {0, len(items) - 2, len(items) - 1}
    keep |= {round(i * (len(items) - 1) / (count - 1)) for i in range(count)}
    return [items[i] for i in sorted(keep) if i >= 0]


def timesteps(steps, spacing, count):
    return spread([int(t) for t in oracle(steps, spacing).timesteps], count)


def run(block, scheduler, t, eta, shape, clip, alpha_to_one, sent):
    return block(
        inputs=sent,
        t=t,
        eta=eta,
        shape=shape,
        clip=clip,
        alpha_to_one=alpha_to_one,
        steps=scheduler.num_inference_steps,
        spacing=scheduler.config.timestep_spacing,
        config=CONFIG,
    )


# ----------------------------------------------------------------------------- TODO #1


def check_pred_original_sample(block, steps, spacing, clip, shape, count):
    scheduler = oracle(steps, spacing)
    for t in timesteps(steps, spacing, count):
        x, eps = tensors(shape, t)
        a_t, a_prev, _, _ = alphas(scheduler, t, 0.0)
        sent = {"alpha_prod_t": a_t, "alpha_prod_t_prev": a_prev, "sample": x, "model_output": eps}
        out = run(block, scheduler, t, 0.0, shape, clip, True, sent)
        out.assert_unchanged(sent)
        where = f"{steps} steps ({spacing}), t={t}, clip_sample={clip}"
        beta = out.number("beta_prod_t")
        if not abs(beta - float(1 - a_t)) <= 1e-6:
            raise Fail(
                f"{where}: beta_prod_t should be beta-bar_t = 1 - alpha-bar_t = "
                f"{float(1 - a_t):.6g}, Eq. (10), got {beta:.6g}."
            )
        got = out.tensor("pred_original_sample", shape)
        want = (x.double() - (1 - a_t).sqrt() * eps.double()) / a_t.sqrt()
        clipped = torch.allclose(got, want.clamp(-1, 1), atol=1e-4) and want.abs().max() > 1.01
        assert_close(
            got,
            want,
            f"{where}: pred_original_sample should be (x_t - sqrt(beta-bar_t) * eps) / "
            "sqrt(alpha-bar_t) with beta-bar_t = 1 - alpha-bar_t, Eqs. (9)-(10)"
            + (" (do not clip it yourself: the code after TODO #1 does)" if clipped else ""),
        )


@check(TODO1, weight=2, params=SHAPES, ids=SHAPE_IDS)
def pred_original_sample_over_all_1000_steps_without_clipping(block, *shape):
    check_pred_original_sample(block, 1000, "leading", False, shape, 30)


@check(TODO1)
def pred_original_sample_with_clipping(block):
    check_pred_original_sample(block, 1000, "leading", True, SHAPES[1], 30)


@check(TODO1, params=["leading", "trailing"])
def pred_original_sample_with_50_steps(block, spacing):
    check_pred_original_sample(block, 50, spacing, False, SHAPES[1], 20)


# ----------------------------------------------------------------------------- TODO #2


def check_prev_sample(block, steps, spacing, eta, shape, clip=True, alpha_to_one=True, count=20):
    scheduler = oracle(steps, spacing, alpha_to_one)
    for t in timesteps(steps, spacing, count):
        x, eps = tensors(shape, t)
        a_t, a_prev, sigma_t, prev_t = alphas(scheduler, t, eta)
        x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()  # float32, as the program has it
        x0 = x0.clamp(-1, 1) if clip else x0
        sent = {
            "alpha_prod_t": a_t,
            "alpha_prod_t_prev": a_prev,
            "sample": x,
            "model_output": eps,
            "beta_prod_t": 1 - a_t,
            "pred_original_sample": x0,
            "sigma_t": sigma_t,
        }
        out = run(block, scheduler, t, eta, shape, clip, alpha_to_one, sent)
        out.assert_unchanged(sent)
        got = out.tensor("prev_sample", shape)
        want = a_prev.sqrt() * x0.double() + (1 - a_prev - sigma_t**2).sqrt() * eps.double()
        assert_close(
            got,
            want,
            f"{steps} steps ({spacing}), t={t}, prev_t={prev_t}, eta={eta}: prev_sample "
            "should be sqrt(alpha-bar_(t-1)) * x_0 + sqrt(1 - alpha-bar_(t-1) - sigma_t^2) * eps, "
            "Eq. (9) (x_0 = the clipped pred_original_sample; no random-noise term: the code "
            "after TODO #2 adds it)",
        )


@check(TODO2, weight=2, params=SHAPES, ids=SHAPE_IDS)
def prev_sample_with_50_steps_eta_0(block, *shape):
    check_prev_sample(block, 50, "leading", 0.0, shape)


@check(TODO2, params=[0.5, 1.0])
def prev_sample_with_eta_above_0_uses_sigma_t(block, eta):
    check_prev_sample(block, 50, "leading", eta, SHAPES[1])


@check(TODO2)
def prev_sample_over_all_1000_steps(block):
    check_prev_sample(block, 1000, "leading", 0.0, SHAPES[1], count=30)


@check(TODO2, params=[True, False], ids=["final alpha 1", "final alpha alpha-bar_0"])
def prev_sample_with_trailing_steps_and_the_final_alpha(block, alpha_to_one):
    check_prev_sample(block, 50, "trailing", 0.5, SHAPES[1], alpha_to_one=alpha_to_one)


@check(TODO2)
def prev_sample_without_clipping(block):
    check_prev_sample(block, 50, "leading", 0.5, SHAPES[1], clip=False)
