"""KID and FID of a run's generator (or of a folder of images) against the dog faces.

    python calc_metrics.py --network training-runs/<run>/checkpoint-005000.pt
    python calc_metrics.py --network checkpoint/part3-10K.pkl --metrics fid
    python calc_metrics.py --fakes some_model_samples/

Prints one JSON line per metric, {"metric": "kid", "value": ..., "num_gen": ..., "num_real": ...};
with --network the same lines are appended to metrics.jsonl in the checkpoint's folder. As in the
DiffAugment paper's fid5k-train, 5000 generated images are compared with the whole training set.
The real images' features are cached beside the dataset, keyed by the detector's hash.
"""

import hashlib
import io
import json
from pathlib import Path

import click

METRICS = ("kid", "fid")


def parse_metrics(ctx, param, value) -> list[str]:
    names = [name.strip().lower() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise click.BadParameter(
            f"{value!r} names no metric or an unknown one; give kid, fid or kid,fid."
        )
    return list(dict.fromkeys(names))


def data_fingerprint(path: Path) -> str:
    """A hash of the images' names, sizes and modification times: a changed dataset gets a new
    feature cache."""
    from training.dataset import IMAGE_SUFFIXES

    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        files = [path]
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        digest.update(
            f"{file.relative_to(path.parent)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode()
        )
    return digest.hexdigest()[:16]


def native_resolution(path: Path, option: str) -> int:
    """The side of the first image of a folder or zip (ImageDataset makes every image that size)."""
    from PIL import Image

    from training.dataset import DatasetError, _list_images

    if not path.exists():
        raise DatasetError(
            f"{option} {path} does not exist; give a folder of images"
            + (" or run `python dataset_download.py` first." if option == "--data" else ".")
        )
    entries = _list_images(path)
    if not entries:
        raise DatasetError(f"{option} {path} holds no .png or .jpg images.")
    name, read = entries[0]
    try:
        with Image.open(io.BytesIO(read())) as image:
            return image.size[0]
    except Exception:  # PIL raises many kinds for damaged files
        raise DatasetError(f"cannot read image {name}; delete or replace that file.") from None


def feature_batches(detector, images, batch, device, what):
    """Features of a uint8 [N, 3, R, R] tensor, batch by batch, as float64 [N, D]."""
    import numpy as np
    from tqdm import tqdm

    from training.metrics import features

    chunks = images.split(batch)
    with tqdm(total=len(chunks), desc=what, unit="batch", leave=False) as bar:
        parts = []
        for chunk in chunks:
            parts.append(features(detector, chunk.to(device)))
            bar.update()
    return np.concatenate(parts)


def real_features(data: Path, detector, detector_hash, batch, device):
    """The dataset's features, read from the cache beside it or computed and cached there."""
    import numpy as np
    from outputs import atomic_write

    from training.dataset import ImageDataset

    cache = data.parent / f".{data.name}.features-{detector_hash[:16]}-{data_fingerprint(data)}.npy"
    if cache.is_file():
        try:
            return np.load(cache)
        except (OSError, ValueError):
            cache.unlink(missing_ok=True)  # damaged: computed again below
    dataset = ImageDataset(data, native_resolution(data, "--data"))
    if dataset.warning:
        click.echo(dataset.warning)
    feats = feature_batches(detector, dataset.images, batch, device, "real features")
    try:
        atomic_write(cache, lambda f: np.save(f, feats))
    except OSError as error:
        click.echo(f"note: could not cache the real features at {cache} ({error.strerror}).")
    return feats


def load_generator(path, device):
    """(G_ema, iteration) of a checkpoint of this code or a course/NVIDIA pickle."""
    from training.checkpoint import CheckpointError, load_checkpoint
    from training.config import TrainConfig
    from training.networks import Generator

    state = load_checkpoint(path)
    config = TrainConfig(**state["options"]["config"])
    G = Generator(**config.network_kwargs()[0])
    try:
        G.load_state_dict(state["G_ema"])
    except (KeyError, RuntimeError) as error:
        first = (str(error).strip().splitlines() or ["G_ema missing"])[0][:160]
        raise CheckpointError(
            f"G_ema of checkpoint {path} does not fit its own config ({first}); use a checkpoint "
            "written by this version of the code."
        ) from None
    return G.to(device).eval().requires_grad_(False), state.get("iteration")


def generated_features(G, detector, num_gen, seed, batch, device):
    """Features of num_gen images of G from latents z ~ N(0, I) drawn with `seed`."""
    import numpy as np
    import torch
    from tqdm import tqdm

    from training.metrics import features

    z = torch.randn([num_gen, G.z_dim], generator=torch.Generator().manual_seed(seed))
    torch.manual_seed(seed)  # the synthesis layers' noise inputs
    chunks = z.split(batch)
    parts = []
    with (
        torch.no_grad(),
        tqdm(total=len(chunks), desc="generated features", unit="batch", leave=False) as bar,
    ):
        for chunk in chunks:
            images = (G(chunk.to(device)) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
            parts.append(features(detector, images))
            bar.update()
    return np.concatenate(parts)


def append_lines(path: Path, lines: list[str]) -> None:
    """Whole lines appended in one write, so the file never ends in half a line."""
    with open(path, "a", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--network", default=None, help="Checkpoint of a run (its G_ema generates).")
@click.option("--fakes", default=None, help="Folder of generated images, instead of --network.")
@click.option("--data", default="many_shot_dog", show_default=True, help="The real images.")
@click.option(
    "--metrics",
    "metric_names",
    default="kid,fid",
    show_default=True,
    callback=parse_metrics,
    help="kid, fid or both, comma-separated.",
)
@click.option(
    "--num_gen",
    type=click.IntRange(min=2),
    default=None,
    help="Images to generate [default: 5000]; with --fakes, use only the first ones.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Latents, noise and KID's subsets."
)
@click.option(
    "--detector",
    default=None,
    help="TorchScript feature network [default: TF-Inception of StyleGAN2-ADA's metrics].",
)
@click.option(
    "--batch", type=click.IntRange(min=1), default=64, show_default=True, help="Images per batch."
)
def main(network, fakes, data, metric_names, num_gen, seed, detector, batch):
    if (network is None) == (fakes is None):
        raise click.UsageError("give exactly one of --network and --fakes.")
    import torch
    from train import resolve_data

    from training import metrics
    from training.checkpoint import CheckpointError
    from training.dataset import DatasetError, ImageDataset

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data_path = resolve_data(data)
    try:
        detector_path = Path(detector) if detector else metrics.fetch_default_detector()
        net = metrics.load_detector(detector_path, device)
        detector_hash = metrics.file_sha256(detector_path)
        real_resolution = native_resolution(data_path, "--data")
        if network:
            G, iteration = load_generator(network, device)
            if G.img_resolution != real_resolution:
                raise DatasetError(
                    f"--network {network} makes {G.img_resolution}x{G.img_resolution} images but "
                    f"the images of --data {data_path} are {real_resolution}x{real_resolution}; "
                    "compare a generator with the dataset it was trained on."
                )
            num_gen = num_gen or 5000
            fake_feats = generated_features(G, net, num_gen, seed, batch, device)
        else:
            fakes_path = Path(fakes)
            fake_resolution = native_resolution(fakes_path, "--fakes")
            if fake_resolution != real_resolution:
                raise DatasetError(
                    f"the images of --fakes {fakes_path} are {fake_resolution}x{fake_resolution} "
                    f"but those of --data {data_path} are {real_resolution}x{real_resolution}; "
                    "compare images of the same size."
                )
            fakes = ImageDataset(fakes_path, fake_resolution)
            if fakes.warning:
                click.echo(fakes.warning)
            images = fakes.images
            images = images[:num_gen] if num_gen else images
            if len(images) < 2:
                raise DatasetError(f"--fakes {fakes_path} holds fewer than 2 images.")
            fake_feats = feature_batches(net, images, batch, device, "fake features")
        real_feats = real_features(data_path, net, detector_hash, batch, device)
    except (DatasetError, CheckpointError, metrics.DetectorError) as error:
        raise click.ClickException(str(error)) from None
    if len(real_feats) < 2:
        raise click.ClickException(f"--data {data_path} holds fewer than 2 images.")
    if real_feats.shape[1] != fake_feats.shape[1]:
        raise click.ClickException("the detector returned features of different sizes.")

    lines = []
    for name in metric_names:
        if name == "kid":
            value = metrics.kid(real_feats, fake_feats, seed=seed)
        else:
            value = metrics.fid(real_feats, fake_feats)
        record = {
            "metric": name,
            "value": value,
            "num_gen": len(fake_feats),
            "num_real": len(real_feats),
        }
        if network:
            record.update(network=str(network), iteration=iteration, seed=seed)
        lines.append(json.dumps(record))
        click.echo(lines[-1])
    if network:
        append_lines(Path(network).parent / "metrics.jsonl", lines)


if __name__ == "__main__":
    main()
