"""Checks of the DDPM scheduler (Part B, Sec. 4): TODO #1-#3 of scheduler/DDPM_scheduler.py.

Each block is graded as the function its entry in tools/todos.py describes, inside the real
DDPMScheduler.step(): the judge sends the names in the block's scope and reads its results.
- #1 gets `t` and `prev_t`; its six alphas and betas are compared with closed-form values made
  from diffusers' own DDPMScheduler.alphas_cumprod (the independent oracle);
- #2 gets x_t, eps and the six (correct) alphas and betas; x_0 is compared with Eq. (1);
- #3 gets the same and x_0 as the program has it (clipped when clip_sample); the mean of
  x_(t-1) is compared with Eq. (2).
So no block's score depends on another block: the worker (tests/grading/reach.py) runs step()
with the names of the other blocks taken from what the judge sent. Schedules: the 1000 training steps (prev_t = t - 1,
-1 after t = 0), and 50 strided steps with 'leading' and 'trailing' spacing (the last step has
prev_t = -1).
"""

import torch
from diffusers import DDPMScheduler as OracleDDPM

from tools.judge import Fail, assert_close, check

PATH = "Diffusion_homework/scheduler/DDPM_scheduler.py"
TODO1, TODO2, TODO3 = f"{PATH}#1", f"{PATH}#2", f"{PATH}#3"

# google/ddpm-celebahq-256's scheduler.
CONFIG = dict(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear")
SHAPES = [(1, 3, 8, 8), (3, 3, 6, 10)]  # batch 1; odd batch with non-square images
SHAPE_IDS = ["batch 1", "batch 3 of 6x10"]
ALPHAS = (
    "alpha_prod_t",
    "alpha_prod_t_prev",
    "beta_prod_t",
    "beta_prod_t_prev",
    "current_alpha_t",
    "current_beta_t",
)

# ----------------------------------------------------------------------------- the oracle


def schedule(steps, spacing):
    """[(t, prev_t)] of diffusers' DDPMScheduler for this schedule, in sampling order."""
    oracle = OracleDDPM(**CONFIG, timestep_spacing=spacing)
    oracle.set_timesteps(steps)
    return [(int(t), int(oracle.previous_timestep(int(t)))) for t in oracle.timesteps]


ALPHAS_CUMPROD = OracleDDPM(**CONFIG).alphas_cumprod  # alpha-bar_t, float32


def alphas(t, prev_t):
    """The six names of TODO #1, Eqs. (3)-(8), as 0-dim float64 tensors (so that beta_t, a
    difference of numbers close to 1, is exact; a float32 x_t stays float32)."""
    a_t = ALPHAS_CUMPROD[t].double()
    a_prev = ALPHAS_CUMPROD[prev_t].double() if prev_t >= 0 else torch.tensor(1.0).double()
    return dict(
        alpha_prod_t=a_t,
        alpha_prod_t_prev=a_prev,
        beta_prod_t=1 - a_t,
        beta_prod_t_prev=1 - a_prev,
        current_alpha_t=a_t / a_prev,
        current_beta_t=1 - a_t / a_prev,
    )


RULES = {
    "alpha_prod_t": "alpha-bar_t = self.alphas_cumprod[t] (Eq. (3))",
    "alpha_prod_t_prev": "alpha-bar_(t-1) = self.alphas_cumprod[prev_t], self.one when prev_t < 0 "
    "(Eq. (4))",
    "beta_prod_t": "beta-bar_t = 1 - alpha-bar_t (Eq. (5))",
    "beta_prod_t_prev": "beta-bar_(t-1) = 1 - alpha-bar_(t-1) (Eq. (6))",
    "current_alpha_t": "alpha_t = alpha-bar_t / alpha-bar_(t-1) (Eq. (7); with strided steps it "
    "spans prev_t..t, so not self.alphas[t])",
    "current_beta_t": "beta_t = 1 - alpha_t (Eq. (8))",
}


def tensors(shape, t, seed=0):
    """x_t (about the spread of a noisy image) and a model output eps ~ N(0, I)."""
    g = torch.Generator().manual_seed(seed * 1000 + t)
    return 1.5 * torch.randn(shape, generator=g), torch.randn(shape, generator=g)


def x0_of(x, eps, a, clip):
    """Eq. (1) as the program has it after TODO #2: clipped to [-1, 1] when clip_sample."""
    x0 = (x - a["beta_prod_t"] ** 0.5 * eps) / a["alpha_prod_t"] ** 0.5
    return x0.clamp(-1, 1) if clip else x0


def spread(pairs, count):
    """About `count` of the (t, prev_t) pairs, evenly spread, always with the first and the last
    two (prev_t = 0 and prev_t = -1)."""
    keep = {0, len(pairs) - 2, len(pairs) - 1}
    keep |= {round(i * (len(pairs) - 1) / (count - 1)) for i in range(count)}
    return [pairs[i] for i in sorted(keep) if i >= 0]


# ----------------------------------------------------------------------------- TODO #1


def check_alphas(block, steps, spacing, pairs):
    for t, prev_t in pairs:
        out = block(
            inputs={"t": t, "prev_t": prev_t},
            t=t,
            steps=steps,
            spacing=spacing,
            clip=True,
            shape=(1, 3, 4, 4),
            config=CONFIG,
        )
        exact = alphas(t, prev_t)
        for name in ALPHAS:
            got, want = out.number(name), float(exact[name])
            if not abs(got - want) <= 1e-6 + 1e-4 * abs(want):
                raise Fail(
                    f"{steps} steps ({spacing}), t={t}, prev_t={prev_t}: `{name}` should be "
                    f"{RULES[name]} = {want:.6g}, got {got:.6g}."
                )


ALL_STEPS = schedule(1000, "leading")
HALVES = {"t from 999 to 500": ALL_STEPS[:500], "t from 499 to 0": ALL_STEPS[500:]}


@check(TODO1, weight=2, params=list(HALVES))
def alphas_betas_over_all_1000_steps(block, half):
    check_alphas(block, 1000, "leading", spread(HALVES[half], 30))


@check(TODO1)
def alphas_betas_with_50_leading_steps_use_prev_t_not_t_minus_1(block):
    check_alphas(block, 50, "leading", spread(schedule(50, "leading"), 25))


@check(TODO1)
def alphas_betas_with_50_trailing_steps_and_prev_t_below_zero(block):
    check_alphas(block, 50, "trailing", spread(schedule(50, "trailing"), 25))


# ----------------------------------------------------------------------------- TODO #2


def check_pred_original_sample(block, steps, spacing, clip, shape, pairs):
    for t, prev_t in pairs:
        x, eps = tensors(shape, t)
        a = alphas(t, prev_t)
        sent = {"sample": x, "model_output": eps, **a}
        out = block(
            inputs=sent, t=t, steps=steps, spacing=spacing, clip=clip, shape=shape, config=CONFIG
        )
        out.assert_unchanged(sent)
        got = out.tensor("pred_original_sample", shape)
        want = (x.double() - a["beta_prod_t"].sqrt() * eps.double()) / a["alpha_prod_t"].sqrt()
        clipped = torch.allclose(got, want.clamp(-1, 1), atol=1e-4) and want.abs().max() > 1.01
        assert_close(
            got,
            want,
            f"{steps} steps ({spacing}), t={t}, clip_sample={clip}: pred_original_sample should "
            "be (x_t - sqrt(beta-bar_t) * eps) / sqrt(alpha-bar_t), Eq. (1)"
            + (" (do not clip it yourself: the code after TODO #2 does)" if clipped else ""),
        )


@check(TODO2, weight=2, params=SHAPES, ids=SHAPE_IDS)
def pred_original_sample_without_clipping(block, *shape):
    check_pred_original_sample(block, 1000, "leading", False, shape, spread(ALL_STEPS, 25))


@check(TODO2)
def pred_original_sample_with_clipping(block):
    check_pred_original_sample(block, 1000, "leading", True, SHAPES[1], spread(ALL_STEPS, 25))


@check(TODO2, params=["leading", "trailing"])
def pred_original_sample_with_50_steps(block, spacing):
    check_pred_original_sample(
        block, 50, spacing, False, SHAPES[1], spread(schedule(50, spacing), 20)
    )


# ----------------------------------------------------------------------------- TODO #3


def prev_mean(block, steps, spacing, clip, shape, t, prev_t):
    """(the block's pred_prev_sample, Eq. (2)'s mean, the x_0 sent) at one step."""
    x, eps = tensors(shape, t)
    a = alphas(t, prev_t)
    x0 = x0_of(x, eps, a, clip)
    sent = {"sample": x, "model_output": eps, "pred_original_sample": x0, **a}
    out = block(
        inputs=sent, t=t, steps=steps, spacing=spacing, clip=clip, shape=shape, config=CONFIG
    )
    out.assert_unchanged(sent)
    got = out.tensor("pred_prev_sample", shape)
    want = (
        a["alpha_prod_t_prev"].sqrt() * a["current_beta_t"] / a["beta_prod_t"] * x0.double()
        + a["current_alpha_t"].sqrt() * a["beta_prod_t_prev"] / a["beta_prod_t"] * x.double()
    )
    return got, want, x0.double()


def check_prev_sample(block, steps, spacing, clip, shape, pairs):
    for t, prev_t in pairs:
        got, want, _ = prev_mean(block, steps, spacing, clip, shape, t, prev_t)
        assert_close(
            got,
            want,
            f"{steps} steps ({spacing}), t={t}, prev_t={prev_t}, clip_sample={clip}: "
            "pred_prev_sample should be sqrt(alpha-bar_(t-1)) * beta_t / beta-bar_t * x_0 + "
            "sqrt(alpha_t) * beta-bar_(t-1) / beta-bar_t * x_t, Eq. (2) (x_0 = the clipped "
            "pred_original_sample; no noise term: the code after TODO #3 adds it)",
        )


@check(TODO3, weight=2, params=SHAPES, ids=SHAPE_IDS)
def prev_sample_over_all_1000_steps(block, *shape):
    check_prev_sample(block, 1000, "leading", True, shape, spread(ALL_STEPS, 25))


@check(TODO3)
def prev_sample_without_clipping(block):
    check_prev_sample(block, 1000, "leading", False, SHAPES[1], spread(ALL_STEPS, 25))


@check(TODO3, params=["leading", "trailing"])
def prev_sample_with_50_steps(block, spacing):
    check_prev_sample(block, 50, spacing, True, SHAPES[1], spread(schedule(50, spacing), 20))


@check(TODO3)
def last_step_returns_the_predicted_clean_image(block):
    # x_0 is the answer at the last step only: a block that returns pred_original_sample at
    # every step must not earn this check
    check_prev_sample(block, 1000, "leading", True, SHAPES[1], [(1, 0)])
    got, _, x0 = prev_mean(block, 1000, "leading", True, SHAPES[1], 0, -1)
    assert_close(
        got,
        x0,
        "at the last step (t=0, prev_t=-1, alpha-bar_(t-1) = 1) Eq. (2) gives x_(t-1) = x_0",
    )
