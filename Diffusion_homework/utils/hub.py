"""Find a pretrained model on disk: a local folder, or a Hugging Face hub id (downloaded once, cached).

Two layouts are understood: a pipeline folder with one subfolder per component (`unet/`,
`scheduler/`, `vae/`, ...), and a single-model repository that keeps one model's files at its root
(`config.json`, `scheduler_config.json` and weights, as `google/ddpm-celebahq-256` does).

The cache lives under `HF_HOME` (default `~/.cache/huggingface`); on a cluster put it on scratch
space (`export HF_HOME=/scratch/.../hf`) and pre-download on a login node: a missing model's message
gives the `hf download` command (download_command) that fetches only the files these scripts load.
"""

import contextlib
from collections.abc import Sequence
from pathlib import Path

from huggingface_hub import constants, snapshot_download

# Files a diffusers/transformers component needs: its config, tokenizer files and weights.
CONFIG_PATTERNS = ("*.json", "*.txt", "*.model")
# Half-precision and non-EMA copies of the weights are never needed here; skip their download.
IGNORE_PATTERNS = ["*.fp16.*", "*non_ema*", "*.ckpt", "*.msgpack", "*.onnx*", "*.h5", "*.ot"]
# Root-level files of a single-model repository (exact names, so they match nothing in subfolders).
ROOT_FILES = ("model_index.json", "config.json", "scheduler_config.json")


class ModelError(Exception):
    """A model that cannot be used; the message is one sentence that says what to do."""


class ModelNotFoundError(ModelError):
    """The model is neither a local folder nor available from the hub (or its cache)."""


@contextlib.contextmanager
def loading(what: str, folder: str | Path):
    """Turn a failure to load `what` from `folder` into a ModelError of one sentence."""
    try:
        yield
    except Exception as err:  # noqa: BLE001 - diffusers and transformers raise many kinds
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        reason = reason.split(". ")[0].rstrip(". ")  # its first sentence
        raise ModelError(
            f"Cannot load {what} from {folder} ({reason}); its files are damaged or "
            "belong to another kind of model: download it again or pass another model."
        ) from err


def component_subfolder(folder: str | Path, name: str) -> str | None:
    """`name` if the component has its own subfolder, None if it lives at the root (from_pretrained)."""
    return name if (Path(folder) / name).is_dir() else None


def _has_weights(folder: Path) -> bool:
    return any(folder.glob("*.safetensors")) or any(folder.glob("*.bin"))


def _missing(root: Path, subfolders: Sequence[str]) -> list[str]:
    """Components that are absent, or whose config.json comes without any weights file."""
    missing = []
    for name in subfolders:
        folder = root / name
        if folder.is_dir():
            ok = not (folder / "config.json").is_file() or _has_weights(folder)
        elif name == "scheduler":
            ok = (root / "scheduler_config.json").is_file()
        else:
            ok = (root / "config.json").is_file() and _has_weights(root)
        if not ok:
            missing.append(name)
    return missing


def _patterns(subfolders: Sequence[str], weights: str) -> list[str]:
    prefixes = [f"{folder.strip('/')}/" for folder in subfolders] or [""]
    per_folder = [prefix + pattern for prefix in prefixes for pattern in CONFIG_PATTERNS]
    per_folder += [f"{prefix}*.{weights}" for prefix in prefixes]
    return [*ROOT_FILES, f"diffusion_pytorch_model.{weights}", *per_folder]


def _download(model: str, subfolders: Sequence[str], local_only: bool) -> Path:
    common = dict(local_files_only=local_only, ignore_patterns=IGNORE_PATTERNS)
    root = Path(
        snapshot_download(model, allow_patterns=_patterns(subfolders, "safetensors"), **common)
    )
    if _missing(root, subfolders) and not local_only:
        # Older repositories ship only PyTorch .bin weights: fetch those where safetensors are absent.
        bins = _patterns(_missing(root, subfolders), "bin")
        root = Path(snapshot_download(model, allow_patterns=bins, **common))
    return root


def download_command(model: str, subfolders: Sequence[str], weights: str = "safetensors") -> str:
    """`hf download` of only what resolve_model loads: configs, tokenizer files and the fp32 weights
    of the given components in one format (no fp16 copies, no single-file checkpoints)."""
    include = ["*.json", "*.txt", f"diffusion_pytorch_model.{weights}"]
    include += [
        f"{folder.strip('/')}/*.{weights}"
        for folder in subfolders
        if folder not in ("tokenizer", "scheduler")  # files that *.json and *.txt cover
    ]
    options = [f'--include "{pattern}"' for pattern in include]
    options += [f'--exclude "{pattern}"' for pattern in ("*.fp16.*", "*non_ema*")]
    return f"hf download {model} {' '.join(options)}"


def _not_found(
    model: str, reason: str, subfolders: Sequence[str], weights: str = "safetensors"
) -> ModelNotFoundError:
    hf_home = Path(constants.HF_HOME).expanduser().resolve()
    cache = Path(constants.HF_HUB_CACHE).expanduser().resolve()
    return ModelNotFoundError(
        f"Model '{model}' is not a local folder and could not be loaded from the Hugging Face "
        f"cache {cache} (HF_HOME={hf_home}) or the hub ({reason}); pre-download the files used "
        f"here on a machine with internet access (such as the login node), with the same HF_HOME: "
        f"`{download_command(model, subfolders, weights)}`."
    )


def _configs_without_weights(root: Path, names: Sequence[str]) -> bool:
    """True if a missing component's config is there but not its weights: the repository has no
    safetensors, only PyTorch .bin weights."""
    folders = [root, *(root / name for name in names)]
    return any((folder / "config.json").is_file() for folder in folders)


def resolve_model(model: str, subfolders: Sequence[str] = ()) -> str:
    """Local folder of `model` (a folder path or a hub id) that holds the given components.

    A hub id is looked up in the local cache first; it is downloaded only when something is missing
    and the hub is not switched off (`HF_HUB_OFFLINE=1`). Raises ModelNotFoundError (one sentence).
    """
    path = Path(model).expanduser()
    if path.is_dir():
        missing = _missing(path, subfolders)
        if missing:
            raise ModelNotFoundError(
                f"Model folder {path.resolve()} lacks {', '.join(missing)} (a subfolder with config "
                f"and weights); save the model there with save_pretrained or pass a hub id."
            )
        return str(path.resolve())
    if model.startswith((".", "/", "~")) or model.count("/") > 1:  # a path, not "owner/name"
        raise ModelNotFoundError(
            f"Model folder '{model}' does not exist; pass an existing folder or a hub id."
        )

    reason = "it is not in the cache and HF_HUB_OFFLINE is set"
    weights = "safetensors"
    try:
        root = _download(model, subfolders, local_only=True)
        missing = _missing(root, subfolders)
        if not missing:
            return str(root)
        reason = f"the cached copy lacks {', '.join(missing)}"
        if _configs_without_weights(root, missing):
            weights = "bin"
    except Exception:  # noqa: BLE001 - not cached (completely or at all): try the hub below
        pass
    if constants.is_offline_mode():
        raise _not_found(model, reason, subfolders, weights)
    try:
        root = _download(model, subfolders, local_only=False)
    except Exception as err:  # noqa: BLE001 - network, not found, gated, invalid id: one message
        raise _not_found(model, type(err).__name__, subfolders) from err
    if _missing(root, subfolders):
        reason = f"the repository has no {', '.join(_missing(root, subfolders))}"
        raise _not_found(model, reason, subfolders)
    return str(root)
