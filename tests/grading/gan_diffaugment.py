"""Checks of GAN_homework/DiffAugment_pytorch.py, TODO #1: `rand_cutout` (handout Task 4).

The worker runs the block inside the program's `rand_cutout(x)` (tests/grading/reach.py), many
times per case when the check needs statistics. The judge reads every image's box back from the
output (the zeroed pixels of a strictly positive input) and checks, over many random draws: one
box per image, sides in 25%-50% of the height and of the width, every position inside the image
possible, all channels alike, the gradient with respect to x equal to the mask. No particular random stream is assumed:
any correct implementation (a loop or vectorized, torch or numpy random numbers) passes.
"""

import weakref

import torch

from tools.judge import Fail, check

CUTOUT = "GAN_homework/DiffAugment_pytorch.py"
TODO = f"{CUTOUT}#1"
HEIGHT, WIDTH = 40, 64  # non-square: the box sides are drawn from different ranges
BATCH, DRAWS = 250, 4  # 1000 boxes for the statistics, from one call (1000 x 2 x 40 x 64 floats)


# ---------------------------------------------------------------- judge side: inputs and oracles


def positive_images(batch, channels=2, height=HEIGHT, width=WIDTH, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand((batch, channels, height, width), generator=gen, dtype=dtype) + 0.5


def output_of(out, x, draws=1):
    """The block's x: [B, C, H, W], or [D * B, C, H, W] for several draws."""
    if out.kind("x") != "tensor":
        raise Fail(f"rand_cutout must return a tensor, got the number {float(out['x']):g}.")
    value = out["x"]
    shape = tuple(x.shape) if draws == 1 else (draws, *x.shape)
    if tuple(value.shape) != shape:
        got = tuple(value.shape) if draws == 1 else tuple(value.shape[1:])
        raise Fail(f"rand_cutout returned shape {got}, expected {tuple(x.shape)}.")
    return value.reshape(-1, *x.shape[1:])


def boxes_of(x, out):
    """Read each image's zeroed box back: (top, left, height, width) as [B] integer tensors."""
    zero = out == 0
    if not torch.equal(zero, zero[:, :1].expand_as(zero)):
        raise Fail(
            "The box differs between channels: zero the same pixels in every channel "
            "(mask [B, 1, H, W])."
        )
    if not torch.equal(out, x.to(out.dtype).masked_fill(zero, 0)):
        raise Fail(
            "Pixels outside the box changed: rand_cutout must only zero the box "
            "(x * mask, mask in {0, 1})."
        )
    zero = zero[:, 0]  # [B, H, W]
    rows, cols = zero.any(dim=2), zero.any(dim=1)  # [B, H], [B, W]
    if not bool(rows.any(dim=1).all()):
        raise Fail("Some image has no zeroed box: every image gets one.")
    heights, widths = rows.sum(dim=1), cols.sum(dim=1)
    tops = rows.float().argmax(dim=1)
    lefts = cols.float().argmax(dim=1)
    if not torch.equal(zero.sum(dim=(1, 2)), heights * widths):
        raise Fail("The zeroed pixels of an image do not form one filled rectangle.")
    contiguous = (heights == rows.float().cumsum(1).argmax(1) - tops + 1) & (
        widths == cols.float().cumsum(1).argmax(1) - lefts + 1
    )
    if not bool(contiguous.all()):
        raise Fail("The zeroed pixels of an image do not form one rectangle.")
    return tops, lefts, heights, widths


_boxes = weakref.WeakKeyDictionary()  # block -> its boxes (or why there are none), read once


def many_boxes(block):
    """(tops, lefts, heights, widths) of BATCH * DRAWS boxes on HEIGHT x WIDTH images, the
    boxes of draw d at [d * BATCH, (d + 1) * BATCH)."""
    if block not in _boxes:
        x = positive_images(BATCH)
        try:
            out = block(inputs={"x": x.clone()}, seed=1234, draws=DRAWS)
            _boxes[block] = boxes_of(x.repeat(DRAWS, 1, 1, 1), output_of(out, x, DRAWS))
        except Fail as error:
            _boxes[block] = error
    found = _boxes[block]
    if isinstance(found, Fail):
        raise Fail(str(found))
    return found


def side_bounds(size):
    """Sides allowed in [25%, 50%] of the size, rounded either way."""
    return int(size * 0.25), -(-size // 2)


@check(TODO, weight=2, params=[("height", HEIGHT), ("width", WIDTH)])
def cutout_box_sides_cover_25_to_50_percent(block, axis, size):
    tops, lefts, heights, widths = many_boxes(block)
    sides = heights if axis == "height" else widths
    low, high = side_bounds(size)
    smallest, largest = int(sides.min()), int(sides.max())
    if not (low <= smallest and largest <= high):
        raise Fail(
            f"Box {axis}s range over [{smallest}, {largest}] pixels for images of {axis} {size}: "
            f"they must lie in 25%-50% of the {axis}, [{low}, {high}]."
        )
    if not (smallest <= low + 1 and largest >= high - 1):
        raise Fail(
            f"Box {axis}s range over [{smallest}, {largest}] pixels only, for images of {axis} "
            f"{size}: draw them at random across the whole range 25%-50% of the {axis}, "
            f"[{low}, {high}]."
        )
    if len(torch.unique(sides)) < (high - low) // 2:
        raise Fail(f"Box {axis}s take too few values: draw them at random.")


@check(TODO)
def cutout_box_height_and_width_are_drawn_separately(block):
    _, _, heights, widths = many_boxes(block)
    gap = (heights / HEIGHT - widths / WIDTH).abs()
    if float(gap.max()) <= 0.15:
        raise Fail(
            "Box height and width are always the same fraction of the image: draw the height in "
            "25%-50% of H and the width in 25%-50% of W independently."
        )


@check(TODO, weight=2)
def cutout_box_lies_inside_and_reaches_every_edge(block):
    tops, lefts, heights, widths = many_boxes(block)
    low_h, _ = side_bounds(HEIGHT)
    low_w, _ = side_bounds(WIDTH)
    if not bool((heights >= low_h).all() and (widths >= low_w).all()):
        raise Fail(
            "Some boxes were cut by the image border: place the top-left corner so the whole box "
            "lies inside the image (top in [0, H - h], left in [0, W - w])."
        )
    edges = {
        "top": tops == 0,
        "bottom": tops + heights == HEIGHT,
        "left": lefts == 0,
        "right": lefts + widths == WIDTH,
    }
    for edge, touches in edges.items():
        if not bool(touches.any()):
            raise Fail(
                f"In {BATCH * DRAWS} draws no box touched the {edge} edge: the top-left corner "
                "must be uniform over every position that keeps the box inside (top in "
                "[0, H - h], left in [0, W - w], both ends included)."
            )
    if len(torch.unique(tops)) < HEIGHT // 2 or len(torch.unique(lefts)) < WIDTH // 2:
        raise Fail("Box positions take too few values: draw the top-left corner at random.")


@check(TODO)
def cutout_boxes_differ_within_a_batch(block):
    tops, lefts, heights, widths = (part[:16] for part in many_boxes(block))
    distinct = len({tuple(box) for box in torch.stack([tops, lefts, heights, widths], 1).tolist()})
    if distinct <= 4:
        raise Fail(
            f"Only {distinct} different boxes among 16 images of one batch: every image needs "
            "its own random box."
        )


@check(
    TODO,
    params=[(1, torch.float32), (1, torch.float64), (3, torch.float32), (3, torch.float64)],
    ids=["batch1-float32", "batch1-float64", "batch3-float32", "batch3-float64"],
)
def cutout_keeps_shape_dtype_and_input(block, batch, dtype):
    x = positive_images(batch, channels=3, height=21, width=34, dtype=dtype, seed=batch)
    out = block(inputs={"x": x.clone()}, seed=batch)
    value = output_of(out, x)
    if value.dtype != dtype:
        raise Fail(
            f"rand_cutout returned {value.dtype} for {dtype}: build the mask with x's dtype "
            "and device."
        )
    if not torch.equal(out.after("x"), x):
        raise Fail(
            "rand_cutout edited its input in place: multiply by a mask (x = x * mask) instead."
        )
    boxes_of(x, value)  # one rectangle per image, same in every channel, at any batch size


@check(TODO, weight=2, params=[1, 5])
def cutout_gradient_is_the_mask(block, batch):
    x = positive_images(batch, channels=3, dtype=torch.float64, seed=20 + batch)
    out = block(
        inputs={"x": x.clone()},
        requires_grad=("x",),
        grads=(("x", "x", "sum"),),
        seed=10 + batch,
    )
    value = output_of(out, x)
    if not out.requires_grad("x"):
        raise Fail(
            "The output does not depend on x differentiably (detached?): G learns through the "
            "augmentation, so build it as x * mask."
        )
    boxes_of(x, value)  # a box is cut out: an output equal to x has no zeroed box
    mask = (value != 0).to(x.dtype)
    grad = out.grad("x", "x")
    if grad is None or not torch.equal(grad, mask):
        raise Fail(
            "The gradient of rand_cutout with respect to x is not the mask (1 outside the box, "
            "0 inside): build the output as x * mask."
        )
    if not torch.equal(value, x * mask):
        raise Fail("rand_cutout must return x * mask: x outside the box, 0 inside.")
