"""KID and FID of a run's generator (or of a folder of images) against the dog faces.

    python calc_metrics.py --network training-runs/<run>/checkpoint-005000.pt
    python calc_metrics.py --network checkpoint/part3-10K.pkl --metrics fid
    python calc_metrics.py --fakes some_model_samples/

Prints one JSON line per metric, {"metric": "kid", "value": ..., "num_gen": ..., "num_real": ...};
with --network the same lines are appended to metrics.jsonl in the checkpoint's folder. As in the
DiffAugment paper's fid5k-train, 5000 generated images are compared with the whole training set.
The real images' features are cached beside the dataset, keyed by the detector's hash.
"""

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
    from outputs import append_line

    from training import metrics
    from training.checkpoint import CheckpointError, load_generator
    from training.dataset import DatasetError, ImageDataset, native_resolution, resolve_data
    from training.device import pick_device

    device = pick_device()
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
            fake_feats = metrics.generated_features(G, net, num_gen, seed, batch, device)
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
            fake_feats = metrics.feature_batches(net, images, batch, device, "fake features")
        real_feats = metrics.real_features(data_path, net, detector_hash, batch, device)
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
        append_line(Path(network).parent / "metrics.jsonl", "\n".join(lines))


if __name__ == "__main__":
    main()
