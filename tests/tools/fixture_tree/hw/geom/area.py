"""One TODO block."""

from calc import double


def rect_area(width, height):
    """Area of a width x height rectangle."""
    # TODO #1: set area.
    # ---- BEGIN TODO #1 ----
    area = width * height
    # ---- END TODO #1 ----
    return area


def square_perimeter(side):
    return double(double(side))
