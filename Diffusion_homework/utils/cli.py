"""Command-line pieces shared by the Diffusion scripts: option types and the unfinished-TODO message."""

import contextlib
import math
import re

import click

from utils.device import DTYPES

# The message of the starter's stub, `raise NotImplementedError("TODO #N in <file>")`: the pattern of
# tools/markers.py's STARTER_MESSAGE_RE (the homework runs without tools/; tests/tools/test_markers.py
# checks that the two agree).
STARTER_MESSAGE_RE = re.compile(r"\bTODO #([0-9]+)(?: in ([\w./-]+\.py))?")

# --dtype: one vocabulary in every script (utils/device.py picks "auto" per device); torch's names
# are accepted too.
DTYPE_ALIASES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}


class DtypeChoice(click.Choice):
    """auto, fp32, fp16 or bf16 (float32, float16 and bfloat16 mean the same)."""

    def __init__(self):
        super().__init__(["auto", *DTYPES], case_sensitive=False)

    def convert(self, value, param, ctx):
        return super().convert(DTYPE_ALIASES.get(str(value).lower(), value), param, ctx)


class FiniteFloat(click.FloatRange):
    """A float in the given range that is neither nan nor infinite."""

    name = "finite float"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


@contextlib.contextmanager
def todo_errors():
    """An unfilled TODO of the starter (it raises NotImplementedError("TODO #N in <file>")) ends the
    command with one line that names it, instead of a traceback."""
    try:
        yield
    except NotImplementedError as error:
        if not STARTER_MESSAGE_RE.search(str(error)):
            raise
        raise click.ClickException(
            f"{error} is not implemented yet: fill it in (see the handout) and run again."
        ) from None


def check_steps(num_inference_steps: int, scheduler) -> None:
    """Refuse (click.BadParameter for --num_inference_steps) more sampling steps than the model
    was trained with."""
    most = scheduler.config.num_train_timesteps
    if num_inference_steps > most:
        raise click.BadParameter(
            f"at most {most} steps (the model's training steps).",
            param_hint="--num_inference_steps",
        )
