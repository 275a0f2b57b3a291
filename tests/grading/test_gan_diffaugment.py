"""Grading tests for GAN_homework/DiffAugment_pytorch.py, TODO #1: `rand_cutout` (handout Task 4).

The box of every image is read back from the output (the zeroed pixels of a strictly positive
input) and checked over many random draws: one box per image, sides in 25%-50% of the height
and of the width, every position inside the image possible, all channels alike, the gradient
with respect to x equal to the mask. No particular random stream is assumed: any correct
implementation (a loop or vectorized, torch.randint or torch.rand) passes.
"""

import functools

import pytest
import torch


def rand_cutout(x):
    """The student's rand_cutout, imported per test so that a broken file fails these tests only."""
    import DiffAugment_pytorch

    return DiffAugment_pytorch.rand_cutout(x)


TODO = "GAN_homework/DiffAugment_pytorch.py#1"
HEIGHT, WIDTH = 40, 64  # non-square: the box sides are drawn from different ranges


def positive_images(batch, channels=2, height=HEIGHT, width=WIDTH, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand((batch, channels, height, width), generator=gen, dtype=dtype) + 0.5


def boxes_of(x, out):
    """Read each image's zeroed box back: (top, left, height, width) as [B] integer tensors."""
    assert out.shape == x.shape, (
        f"rand_cutout returned shape {tuple(out.shape)}, expected {tuple(x.shape)}."
    )
    zero = out == 0
    assert torch.equal(zero, zero[:, :1].expand_as(zero)), (
        "The box differs between channels: zero the same pixels in every channel (mask [B, 1, H, W])."
    )
    kept = ~zero
    assert torch.equal(out[kept], x[kept]), (
        "Pixels outside the box changed: rand_cutout must only zero the box (x * mask, mask in {0, 1})."
    )
    zero = zero[:, 0]  # [B, H, W]
    rows, cols = zero.any(dim=2), zero.any(dim=1)  # [B, H], [B, W]
    assert bool(rows.any(dim=1).all()), "Some image has no zeroed box: every image gets one."
    heights, widths = rows.sum(dim=1), cols.sum(dim=1)
    tops = rows.float().argmax(dim=1)
    lefts = cols.float().argmax(dim=1)
    assert torch.equal(zero.sum(dim=(1, 2)), heights * widths), (
        "The zeroed pixels of an image do not form one filled rectangle."
    )
    contiguous = (rows.sum(1) == rows.float().cumsum(1).argmax(1) - tops + 1) & (
        cols.sum(1) == cols.float().cumsum(1).argmax(1) - lefts + 1
    )
    assert bool(contiguous.all()), "The zeroed pixels of an image do not form one rectangle."
    return tops, lefts, heights, widths


@functools.cache
def many_boxes(draws=2000, chunk=500):
    """(tops, lefts, heights, widths) of `draws` boxes on HEIGHT x WIDTH images."""
    torch.manual_seed(1234)
    found = []
    for i in range(draws // chunk):
        x = positive_images(chunk, seed=i)
        found.append(boxes_of(x, rand_cutout(x)))
    return [torch.cat(parts) for parts in zip(*found)]


def side_bounds(size):
    """Sides allowed in [25%, 50%] of the size, rounded either way."""
    return int(size * 0.25), -(-size // 2)


@pytest.mark.todo(TODO, weight=2)
@pytest.mark.parametrize(("axis", "size"), [("height", HEIGHT), ("width", WIDTH)])
def test_cutout_box_sides_cover_25_to_50_percent(axis, size):
    tops, lefts, heights, widths = many_boxes()
    sides = heights if axis == "height" else widths
    low, high = side_bounds(size)
    smallest, largest = int(sides.min()), int(sides.max())
    assert low <= smallest and largest <= high, (
        f"Box {axis}s range over [{smallest}, {largest}] pixels for images of {axis} {size}: "
        f"they must lie in 25%-50% of the {axis}, [{low}, {high}]."
    )
    assert smallest <= low + 1 and largest >= high - 1, (
        f"Box {axis}s range over [{smallest}, {largest}] pixels only, for images of {axis} {size}: "
        f"draw them at random across the whole range 25%-50% of the {axis}, [{low}, {high}]."
    )
    assert len(torch.unique(sides)) >= (high - low) // 2, f"Box {axis}s take too few values."


@pytest.mark.todo(TODO)
def test_cutout_box_height_and_width_are_drawn_separately():
    _, _, heights, widths = many_boxes(draws=1000)
    gap = (heights / HEIGHT - widths / WIDTH).abs()
    assert float(gap.max()) > 0.15, (
        "Box height and width are always the same fraction of the image: draw the height in "
        "25%-50% of H and the width in 25%-50% of W independently."
    )


@pytest.mark.todo(TODO, weight=2)
def test_cutout_box_lies_inside_and_reaches_every_edge():
    tops, lefts, heights, widths = many_boxes()
    low_h, _ = side_bounds(HEIGHT)
    low_w, _ = side_bounds(WIDTH)
    assert bool((heights >= low_h).all() and (widths >= low_w).all()), (
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
        assert bool(touches.any()), (
            f"In 2000 draws no box touched the {edge} edge: the top-left corner must be uniform "
            "over every position that keeps the box inside (top in [0, H - h], left in [0, W - w], "
            "both ends included)."
        )
    assert len(torch.unique(tops)) >= HEIGHT // 2 and len(torch.unique(lefts)) >= WIDTH // 2, (
        "Box positions take too few values: draw the top-left corner at random."
    )


@pytest.mark.todo(TODO)
def test_cutout_boxes_differ_within_a_batch():
    torch.manual_seed(7)
    x = positive_images(16)
    tops, lefts, heights, widths = boxes_of(x, rand_cutout(x))
    distinct = len({tuple(box) for box in torch.stack([tops, lefts, heights, widths], 1).tolist()})
    assert distinct > 4, (
        f"Only {distinct} different boxes among 16 images of one batch: every image needs its "
        "own random box."
    )


@pytest.mark.todo(TODO)
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cutout_keeps_shape_dtype_and_input(batch, dtype):
    torch.manual_seed(batch)
    x = positive_images(batch, channels=3, height=21, width=34, dtype=dtype)
    before = x.clone()
    out = rand_cutout(x)
    assert torch.is_tensor(out), "rand_cutout must return a tensor."
    assert out.dtype == dtype and out.device == x.device, (
        f"rand_cutout returned {out.dtype} on {out.device} for {dtype} on {x.device}: build the "
        "mask with x's dtype and device."
    )
    assert torch.equal(x, before), (
        "rand_cutout edited its input in place: multiply by a mask (x = x * mask) instead."
    )
    boxes_of(x, out)  # one rectangle per image, same in every channel, at any batch size


@pytest.mark.todo(TODO, weight=2)
@pytest.mark.parametrize("batch", [1, 5])
def test_cutout_gradient_is_the_mask(batch):
    torch.manual_seed(10 + batch)
    x = positive_images(batch, channels=3, dtype=torch.float64).requires_grad_(True)
    out = rand_cutout(x)
    assert out.requires_grad, (
        "The output does not depend on x differentiably (detached?): G learns through the "
        "augmentation, so build it as x * mask."
    )
    mask = (out.detach() != 0).to(x.dtype)
    upstream = torch.randn_like(out)
    out.backward(upstream)
    assert x.grad is not None and torch.equal(x.grad, upstream * mask), (
        "The gradient of rand_cutout with respect to x is not the mask (1 outside the box, "
        "0 inside): build the output as x * mask."
    )
    assert torch.equal(out.detach(), x.detach() * mask)
