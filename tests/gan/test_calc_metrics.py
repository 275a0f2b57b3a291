"""calc_metrics.py and training/metrics.py: KID and FID against NumPy evaluations of the formulas,
end to end with a tiny scripted detector (the real one is never downloaded here)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from gan_helpers import GAN_DIR, env, write_images
from PIL import Image

from training import metrics
from training.checkpoint import FORMAT
from training.config import CONFIGS
from training.networks import Discriminator, Generator


class TinyDetector(torch.nn.Module):
    """Follows the contract: uint8 [N, 3, H, W] at any size -> float features [N, 24], the mean
    colors and the mean vertical pixel steps (texture) of each image's four quadrants."""

    def forward(self, images: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        x = images.float() / 255
        steps = (x[:, :, 1:, :] - x[:, :, :-1, :]).abs()
        pool = torch.nn.functional.adaptive_avg_pool2d
        return torch.cat([pool(x, 2).flatten(1), pool(steps, 2).flatten(1)], dim=1)


class BrokenDetector(torch.nn.Module):
    """Breaks the contract: one number for the whole batch."""

    def forward(self, images: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        return images.float().mean()


def script(module, path):
    torch.jit.save(torch.jit.script(module), str(path))
    return path


@pytest.fixture
def detector(tmp_path):
    return script(TinyDetector(), tmp_path / "tiny_detector.pt")


def write_noise(folder, count=12, size=32, seed=1):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")
    return folder


def tiny_checkpoint(path):
    config = CONFIGS["tiny"]
    torch.manual_seed(0)
    g_kwargs, d_kwargs = config.network_kwargs()
    G = Generator(**g_kwargs)
    state = {
        "format": FORMAT,
        "G": G.state_dict(),
        "D": Discriminator(**d_kwargs).state_dict(),
        "G_ema": G.state_dict(),
        "options": {"cfg": "tiny", "config": config.to_dict()},
        "iteration": 7,
    }
    torch.save(state, path)
    return path


def calc(*args, hf_home=None):
    environment = env()
    if hf_home is not None:
        environment["HF_HOME"] = str(hf_home)
    return subprocess.run(
        [sys.executable, "calc_metrics.py", *map(str, args)],
        cwd=GAN_DIR, env=environment, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def records(result) -> dict:
    assert result.returncode == 0, result.stderr
    return {r["metric"]: r for r in map(json.loads, result.stdout.strip().splitlines())}


def one_sentence(result) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("Error:") and message.endswith((".", "`.")), message
    return message


# ---------------------------------------------------------------------------------------------
# The formulas, against direct NumPy evaluations


def kid_by_definition(x, y):
    """Unbiased MMD^2 with k(a, b) = (a.b / D + 1)^3, summed pair by pair."""
    m, dim = len(x), x.shape[1]

    def k(a, b):
        return (a @ b / dim + 1) ** 3

    same = sum(k(x[i], x[j]) + k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    cross = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return same / (m * (m - 1)) - 2 * cross / m**2


def fid_by_definition(x, y):
    """FID with the square root of the non-symmetric S_r S_g from its eigenvalues."""
    s_r, s_g = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    eig = np.linalg.eigvals(s_r @ s_g)
    trace_sqrt = np.sqrt(np.clip(eig.real, 0, None)).sum()
    return ((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(s_r + s_g) - 2 * trace_sqrt


def test_kid_matches_its_definition():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 6)), rng.normal(0.5, 1.2, size=(20, 6))
    # subsets of all 20 samples: every subset is the whole set, whatever the seed
    assert metrics.kid(x, y, num_subsets=3) == pytest.approx(kid_by_definition(x, y), rel=1e-9)


def test_kid_averages_random_subsets_of_at_most_1000():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 5)), rng.normal(size=(30, 5)) + 1
    subsets = np.random.default_rng(7)
    expected = np.mean(
        [
            kid_by_definition(
                x[subsets.choice(40, 30, replace=False)], y[subsets.choice(30, 30, replace=False)]
            )
            for _ in range(100)
        ]
    )
    assert metrics.kid(x, y, seed=7) == pytest.approx(expected, rel=1e-9)


def test_fid_matches_its_definition():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 8))
    y = rng.normal(size=(40, 8)) @ rng.normal(size=(8, 8)) + 0.3
    assert metrics.fid(x, y) == pytest.approx(fid_by_definition(x, y), rel=1e-7)


def test_fid_of_a_set_with_itself_is_zero_even_when_singular():
    x = np.random.default_rng(3).normal(size=(10, 32))  # fewer samples than dimensions
    assert abs(metrics.fid(x, x)) < 1e-6


# ---------------------------------------------------------------------------------------------
# calc_metrics.py end to end


def test_folder_against_itself_has_zero_fid_and_caches_the_real_features(tmp_path, detector):
    data = write_images(tmp_path / "dogs", count=12)
    result = records(calc("--fakes", data, "--data", data, "--detector", detector))
    assert abs(result["fid"]["value"]) < 1e-6
    # the unbiased estimator leaves out k(x_i, x_i) within a set but not across: below 0 here
    assert result["kid"]["value"] < 0
    assert result["kid"]["num_gen"] == result["kid"]["num_real"] == 12
    caches = list(tmp_path.glob(".dogs.features-*.npy"))
    assert len(caches) == 1
    assert np.load(caches[0]).shape == (12, 24)
    again = records(calc("--fakes", data, "--data", data, "--detector", detector))
    assert again["fid"]["value"] == result["fid"]["value"]


def test_noise_is_far_from_the_dogs_and_matches_numpy_on_the_same_features(tmp_path, detector):
    data = write_images(tmp_path / "dogs", count=12)
    noise = write_noise(tmp_path / "noise", count=12)
    result = records(calc("--fakes", noise, "--data", data, "--detector", detector, "--seed", 3))
    assert result["kid"]["value"] > 1e-3
    assert result["fid"]["value"] > 1e-2
    net = torch.jit.load(str(detector))

    def feats(folder):
        images = [np.asarray(Image.open(folder / f"{i}.png").convert("RGB")) for i in range(12)]
        batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
        return net(batch, return_features=True).double().detach().numpy()

    real, fake = feats(data), feats(noise)
    assert result["kid"]["value"] == pytest.approx(kid_by_definition(real, fake), rel=1e-4)
    assert result["fid"]["value"] == pytest.approx(fid_by_definition(real, fake), rel=1e-4)


def test_generation_from_a_checkpoint_is_deterministic_and_logged(tmp_path, detector):
    data = write_images(tmp_path / "dogs", count=8)
    run = tmp_path / "run"
    run.mkdir()
    network = tiny_checkpoint(run / "checkpoint-000007.pt")
    args = ("--network", network, "--data", data, "--detector", detector, "--num_gen", 20)
    first = records(calc(*args, "--seed", 5))
    second = records(calc(*args, "--seed", 5, "--metrics", "fid"))
    other = records(calc(*args, "--seed", 6, "--metrics", "fid"))
    assert first["fid"]["value"] == second["fid"]["value"] != other["fid"]["value"]
    assert first["kid"]["num_gen"] == 20 and first["kid"]["num_real"] == 8
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["metric"] for r in logged] == ["kid", "fid", "fid", "fid"]
    assert logged[0] == first["kid"] and logged[0]["iteration"] == 7


@pytest.mark.parametrize(
    "case, expected",
    [
        ("empty", "holds no .png or .jpg images"),
        ("other size", "are 16x16 but those of --data"),
        ("missing", "does not exist"),
        ("broken detector", "not float features [N, D]"),
        ("not torchscript", "is not a TorchScript module"),
        ("bad metric", "give kid, fid or kid,fid"),
    ],
)
def test_bad_input_is_one_sentence(tmp_path, detector, case, expected):
    data = write_images(tmp_path / "dogs", count=4)
    fakes = {
        "empty": tmp_path / "empty",
        "other size": write_images(tmp_path / "small", count=4, size=16),
        "missing": tmp_path / "nowhere",
    }.get(case, data)
    (tmp_path / "empty").mkdir()
    if case == "broken detector":
        detector = script(BrokenDetector(), tmp_path / "broken.pt")
    if case == "not torchscript":
        detector = tmp_path / "weights.pt"
        torch.save({"w": torch.zeros(2)}, detector)
    extra = ("--metrics", "lpips") if case == "bad metric" else ()
    message = one_sentence(calc("--fakes", fakes, "--data", data, "--detector", detector, *extra))
    assert expected in message
    assert not list(tmp_path.glob(".*.npy"))


def test_a_generator_of_another_size_is_one_sentence(tmp_path, detector):
    data = write_images(tmp_path / "dogs", count=4, size=16)
    network = tiny_checkpoint(tmp_path / "tiny.pt")
    message = one_sentence(calc("--network", network, "--data", data, "--detector", detector))
    assert "makes 32x32 images" in message


def test_offline_without_the_default_detector_names_the_predownload(tmp_path):
    data = write_images(tmp_path / "dogs", count=4)
    message = one_sentence(calc("--fakes", data, "--data", data, hf_home=tmp_path / "hf"))
    assert "bash slurm/setup_env.sh models" in message
    assert not (tmp_path / "hf" / "hw5-metrics").exists() or not any(
        (tmp_path / "hf" / "hw5-metrics").iterdir()
    )


@pytest.mark.parametrize("case", ["verified", "wrong hash", "not torchscript"])
def test_the_default_detector_is_downloaded_once_and_verified(tmp_path, monkeypatch, case):
    """The real download code, from a file:// address instead of NVIDIA's server."""
    source = script(TinyDetector(), tmp_path / "inception.pt")
    if case == "not torchscript":
        torch.save({"w": torch.zeros(2)}, source)
    digest = metrics.file_sha256(source) if case != "wrong hash" else "0" * 64
    monkeypatch.setattr(metrics, "DETECTOR_URL", source.as_uri())
    monkeypatch.setattr(metrics, "DETECTOR_SHA256", digest)
    monkeypatch.setattr(metrics.constants, "HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    cache = tmp_path / "hf" / "hw5-metrics"
    if case == "verified":
        path = metrics.fetch_default_detector(progress=False)
        assert path == cache / "inception.pt"
        assert path.read_bytes() == source.read_bytes()
        source.unlink()  # a second call does not download again
        assert metrics.fetch_default_detector(progress=False) == path
        return
    expected = "not the expected" if case == "wrong hash" else "is not a TorchScript module"
    with pytest.raises(metrics.DetectorError, match=expected):
        metrics.fetch_default_detector(progress=False)
    assert list(cache.iterdir()) == []
