"""utils.device: the one place the Diffusion scripts choose their device and precision."""

import click
import pytest
import torch

from utils import device as chooser

CPU, GPU = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize(
    ("name", "device", "auto", "expected"),
    [
        ("auto", CPU, "fp16", torch.float32),
        ("auto", CPU, "bf16", torch.float32),
        ("auto", GPU, "fp16", torch.float16),
        ("auto", GPU, "bf16", torch.bfloat16),
        ("fp32", GPU, "fp16", torch.float32),
        ("fp16", CPU, "fp16", torch.float16),  # autocast in fp16 on the CPU, when asked for
    ],
)
def test_autocast_dtype(monkeypatch, name, device, auto, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert chooser.autocast_dtype(name, device, auto=auto) == expected


def test_autocast_bf16_falls_back_to_fp16_on_a_gpu_without_it(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert chooser.autocast_dtype("bf16", GPU) == torch.float16
    assert chooser.autocast_dtype("auto", GPU, auto="bf16") == torch.float16


@pytest.mark.parametrize(
    ("name", "device", "expected"),
    [
        ("auto", CPU, torch.float32),
        ("auto", GPU, torch.float16),
        ("fp32", CPU, torch.float32),
        ("bf16", GPU, torch.bfloat16),
    ],
)
def test_weights_dtype(name, device, expected):
    assert chooser.weights_dtype(name, device) == expected


@pytest.mark.parametrize("name", ["fp16", "bf16"])
def test_half_weights_need_a_gpu(name):
    with pytest.raises(click.BadParameter, match=f"--dtype {name} needs a GPU"):
        chooser.weights_dtype(name, CPU)


def test_pick_device_follows_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert chooser.pick_device() == CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert chooser.pick_device() == GPU
