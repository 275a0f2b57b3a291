"""Checks of hw/calc.py: double (TODO #1) and clamp (TODO #2)."""

from tools.judge import Fail, check

DOUBLE, CLAMP = "hw/calc.py#1", "hw/calc.py#2"


@check(DOUBLE)
def double_of_an_integer(block):
    y = float(block(x=3)["y"])
    if y != 6:
        raise Fail(f"double(3) should be 6, got {y:g}")


@check(DOUBLE, weight=2)
def double_of_a_negative_float(block):
    y = float(block(x=-2.5)["y"])
    assert y == -5.0, f"double(-2.5) should be -5.0, got {y:g}"


@check(CLAMP, params=[(-1, 0), (0.5, 0.5), (3, 1)])
def clamp_limits_both_ends(block, value, expected):
    c = float(block(value=value, low=0, high=1)["c"])
    assert c == expected, f"clamp of {value} to [0, 1] should be {expected}, got {c:g}"
