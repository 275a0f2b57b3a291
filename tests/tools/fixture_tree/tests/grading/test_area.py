import pytest
from geom.area import rect_area


@pytest.mark.todo("hw/geom/area.py#1")
def test_area_of_a_rectangle():
    assert rect_area(2, 3) == 6


@pytest.mark.todo("hw/geom/area.py#1")
def test_area_is_not_symmetric_by_accident():
    assert rect_area(2.5, 4) == 10.0
