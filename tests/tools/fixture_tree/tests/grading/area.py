"""Checks of hw/geom/area.py: rect_area (TODO #1)."""

from tools.judge import check
from tools.worker import capture

AREA = "hw/geom/area.py#1"


def reach_area(module, case):
    return capture(module.rect_area, case["args"]["width"], case["args"]["height"])


REACH = {"hw/geom/area.py": {1: reach_area}}


@check(AREA)
def area_of_a_rectangle(block):
    assert float(block(width=2, height=3)["area"]) == 6


@check(AREA)
def area_is_not_symmetric_by_accident(block):
    assert float(block(width=2.5, height=4)["area"]) == 10.0
