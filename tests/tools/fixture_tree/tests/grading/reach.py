"""How the program reaches each TODO block of the fixture tree: the one module a worker loads."""

from tools.worker import capture


def reach_double(module, case):
    return capture(module.double, case["args"]["x"])


def reach_clamp(module, case):
    args = case["args"]
    return capture(module.clamp, [args["value"]], args["low"], args["high"])


def reach_area(module, case):
    return capture(module.rect_area, case["args"]["width"], case["args"]["height"])


REACH = {"hw/calc.py": {1: reach_double, 2: reach_clamp}, "hw/geom/area.py": {1: reach_area}}
