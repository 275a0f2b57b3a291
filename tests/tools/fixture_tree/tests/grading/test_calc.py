import pytest
from calc import clamp, double


@pytest.mark.todo("hw/calc.py#1")
def test_double_of_an_integer():
    assert double(3) == 6, "double(3) should be 6"


@pytest.mark.todo("hw/calc.py#1", weight=2)
def test_double_of_a_negative_float():
    assert double(-2.5) == -5.0, "double(-2.5) should be -5.0"


@pytest.mark.todo("hw/calc.py#2")
def test_clamp_limits_both_ends():
    assert clamp([-1, 0.5, 3], 0, 1) == [0, 0.5, 1]
