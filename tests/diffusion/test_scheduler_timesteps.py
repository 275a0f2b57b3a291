"""The timesteps that step() goes through: the schedule set_timesteps made, in order, then -1.

Which previous timestep a step used is read back from its output: for inputs where x_{t-1} is a
well-conditioned closed-form function of alpha-bar_t and alpha-bar_{t-1} (DDIM: eps = 0, so
x_{t-1} = sqrt(alpha-bar_{t-1} / alpha-bar_t) x_t; DDPM: x_t = sqrt(1 - alpha-bar_t) eps, so x_0 = 0),
that function is evaluated for every candidate timestep below t and for -1 (after the last step),
and the one that fits is the step's.
"""

import pytest
import torch
from diffusion_helpers import DDIM, DDPM

from scheduler.DDIM_scheduler import DDIMScheduler
from scheduler.DDPM_scheduler import DDPMScheduler

SHAPE = (1, 1, 1, 3)
STEPPING = [  # the schedulers, with the TODO blocks their step() goes through
    pytest.param(DDPMScheduler, marks=pytest.mark.needs(*DDPM)),
    pytest.param(DDIMScheduler, marks=pytest.mark.needs(*DDIM)),
]
SCHEDULES = [(13, 0), (7, 0), (1, 0), (50, 0), (1000, 0), (13, 1), (7, 1), (1, 1), (999, 1)]


def step_and_decode(scheduler, t):
    """Runs step() at t (no clipping); returns the previous timestep its output was computed with."""
    values = torch.tensor([0.5, 1.0, -2.0]).reshape(SHAPE)
    a_t = scheduler.alphas_cumprod[t].double()
    a_prev = torch.cat([scheduler.final_alpha_cumprod.reshape(1), scheduler.alphas_cumprod[:t]])
    a_prev = a_prev.double()[:, None]  # one row per candidate -1, 0, ..., t - 1
    if isinstance(scheduler, DDIMScheduler):  # Eq. (9), eta = 0, eps = 0
        got = scheduler.step(torch.zeros(SHAPE), t, values).prev_sample
        expected = (a_prev / a_t).sqrt() * values.flatten().double()
    else:  # Eq. (2) with x_0 = 0, plus sigma z with z drawn from a generator seeded like the step's
        sample = (1 - scheduler.alphas_cumprod[t]) ** 0.5 * values
        generator = torch.Generator().manual_seed(t)
        got = scheduler.step(values, t, sample, generator=generator).prev_sample
        alpha_t = a_t / a_prev
        expected = alpha_t.sqrt() * (1 - a_prev) / (1 - a_t) * sample.flatten().double()
        if t > 0:
            z = torch.randn(SHAPE, generator=torch.Generator().manual_seed(t)).flatten().double()
            expected = expected + ((1 - a_prev) / (1 - a_t) * (1 - alpha_t)).sqrt() * z
    error = ((expected - got.flatten().double()).abs() / (1 + expected.abs())).max(dim=1).values
    best, runner_up = torch.cat([error, torch.tensor([1.0])]).topk(2, largest=False).values
    assert best < 1e-5 and best < runner_up / 10, f"step() at t={t}: no previous timestep fits"
    return int(error.argmin()) - 1


@pytest.mark.parametrize("cls", STEPPING)
@pytest.mark.parametrize("spacing", ["leading", "trailing"])
@pytest.mark.parametrize(
    "steps, offset", SCHEDULES, ids=[f"{n} steps offset {o}" for n, o in SCHEDULES]
)
def test_step_walks_the_schedule_and_then_minus_one(cls, spacing, steps, offset):
    scheduler = cls(timestep_spacing=spacing, steps_offset=offset, clip_sample=False)
    scheduler.set_timesteps(steps)
    schedule = scheduler.timesteps.tolist()
    assert len(schedule) == steps and len(set(schedule)) == steps
    assert all(0 <= t < 1000 for t in schedule)
    visited, t = [], schedule[0]
    while t >= 0:
        visited.append(t)
        assert len(visited) <= steps, f"step() went past the {steps} timesteps: {visited}"
        t = step_and_decode(scheduler, t)
    assert visited == schedule
    assert [scheduler.previous_timestep(t) for t in schedule] == schedule[1:] + [-1]


@pytest.mark.needs(*DDIM)
def test_trailing_spacing_with_a_step_count_that_does_not_divide_1000():
    scheduler = DDIMScheduler(timestep_spacing="trailing", clip_sample=False)
    scheduler.set_timesteps(13)
    assert scheduler.timesteps.tolist()[:3] == [999, 922, 845]
    assert step_and_decode(scheduler, 999) == 922  # not 999 - 1000 // 13 = 923


@pytest.mark.parametrize("cls", [DDPMScheduler, DDIMScheduler])
def test_a_timestep_outside_the_schedule_is_refused(cls):
    scheduler = cls()
    scheduler.set_timesteps(50)
    with pytest.raises(ValueError, match="901 is not in"):
        scheduler.step(torch.zeros(SHAPE), 901, torch.ones(SHAPE))


def test_leading_steps_past_the_last_timestep_are_refused():
    for cls in (DDPMScheduler, DDIMScheduler):
        with pytest.raises(ValueError, match="take fewer steps"):
            cls(steps_offset=1).set_timesteps(1000)


@pytest.mark.parametrize("cls", STEPPING)
def test_without_set_timesteps_every_training_step_is_sampled(cls):
    """step() without set_timesteps = step() after set_timesteps(1000), bit for bit."""
    default, explicit = cls(), cls()
    explicit.set_timesteps(1000)
    assert default.timesteps.tolist() == explicit.timesteps.tolist() == list(range(999, -1, -1))
    eta = {"eta": 0.5} if cls is DDIMScheduler else {}
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 5, generator=g)
    ga, gb = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    a, b = x, x
    for t in default.timesteps.tolist():
        eps = torch.tanh(a + t / 1000)
        a = default.step(eps, t, a, generator=ga, **eta).prev_sample
        b = explicit.step(torch.tanh(b + t / 1000), t, b, generator=gb, **eta).prev_sample
        assert torch.equal(a, b), f"t={t}"


def test_the_value_after_the_last_step():
    ddpm = DDPMScheduler()
    assert ddpm.one is ddpm.final_alpha_cumprod and float(ddpm.one) == 1.0
    assert float(DDIMScheduler().final_alpha_cumprod) == 1.0
    ddim = DDIMScheduler(set_alpha_to_one=False)
    assert torch.equal(ddim.final_alpha_cumprod, ddim.alphas_cumprod[0])
