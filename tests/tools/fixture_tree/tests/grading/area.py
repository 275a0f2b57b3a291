"""Checks of hw/geom/area.py: rect_area (TODO #1)."""

from tools.judge import check

AREA = "hw/geom/area.py#1"


@check(AREA)
def area_of_a_rectangle(block):
    assert float(block(width=2, height=3)["area"]) == 6


@check(AREA)
def area_is_not_symmetric_by_accident(block):
    assert float(block(width=2.5, height=4)["area"]) == 10.0
