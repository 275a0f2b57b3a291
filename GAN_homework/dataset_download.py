"""Download the few-shot dog dataset into many_shot_dog/ (389 RGB PNGs, 256x256, 0.png ... 388.png).

    python dataset_download.py                      # from the hub dataset huggan/few-shot-dog
    python dataset_download.py --source FILE.parquet   # from a parquet file you downloaded yourself

The source is the dataset repository `huggan/few-shot-dog` (one parquet file, about 9 MB, the
AnimalFace-dog set of the DiffAugment paper); its `image` column holds each image's PNG/JPEG bytes.
Safe to rerun: a complete folder is left alone, and a new one is written under a temporary name and
renamed only when every image is in it. It writes only into a folder it made (marked by a hidden
file): a folder with any other files is refused before the download, never replaced.
"""

import io
import sys
from pathlib import Path

import click
from outputs import ResultsFolder
from PIL import Image, UnidentifiedImageError

REPO_ID = "huggan/few-shot-dog"
RESOLUTION = 256
EXPECTED = 389


def is_complete(folder: Path, count: int) -> bool:
    """True if folder holds exactly 0.png ... <count-1>.png, each 256x256 RGB."""
    if not folder.is_dir() or len(list(folder.glob("*.png"))) != count:
        return False
    for i in range(count):
        try:
            with Image.open(folder / f"{i}.png") as image:
                if image.size != (RESOLUTION, RESOLUTION) or image.mode != "RGB":
                    return False
        except (OSError, UnidentifiedImageError):
            return False
    return True


def parquet_files(source: str) -> list[Path]:
    """Local parquet file(s) of a path, or of the hub dataset repository `source` (downloaded)."""
    path = Path(source)
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(path.rglob("*.parquet"))
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        folder = snapshot_download(
            repo_id=source, repo_type="dataset", allow_patterns=["*.parquet"]
        )
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as error:
        raise click.ClickException(
            f"could not download the dataset {source} ({type(error).__name__}); without network, "
            f"fetch its parquet file from https://huggingface.co/datasets/{source} on another "
            "machine and run `python dataset_download.py --source PATH/TO/FILE.parquet`."
        ) from None
    return sorted(Path(folder).rglob("*.parquet"))


def read_images(files: list[Path]) -> list[bytes]:
    """The encoded bytes of every row's image, in file and row order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    images = []
    for file in files:
        try:
            table = pq.read_table(file)
        except (pa.ArrowException, OSError) as error:
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            reason = reason.split(". ")[0].rstrip(".")  # its first sentence
            raise click.ClickException(
                f"{file} is not a readable parquet file ({reason}); download it again."
            ) from None
        if "image" not in table.column_names:
            raise click.ClickException(f"{file} has no 'image' column; it is not the dog dataset.")
        for row, cell in enumerate(table.column("image").to_pylist()):
            data = cell.get("bytes") if isinstance(cell, dict) else cell
            if not isinstance(data, bytes):
                raise click.ClickException(
                    f"row {row} of {file} holds no encoded image; it is not the dog dataset."
                )
            images.append(data)
    return images


def write_images(encoded: list[bytes], folder: Path) -> int:
    """Decode, convert to RGB, resize to 256x256 if needed, save as <i>.png; count resized ones."""
    resized = 0
    for i, data in enumerate(encoded):
        try:
            image = Image.open(io.BytesIO(data)).convert("RGB")
        except (OSError, UnidentifiedImageError):
            raise click.ClickException(
                f"image {i} of the dataset cannot be decoded; download it again."
            ) from None
        if image.size != (RESOLUTION, RESOLUTION):
            image = image.resize((RESOLUTION, RESOLUTION), Image.Resampling.LANCZOS)
            resized += 1
        image.save(folder / f"{i}.png")
    return resized


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--source", default=REPO_ID, show_default=True, help="Hub dataset id, parquet file or folder."
)
@click.option(
    "--out",
    default="many_shot_dog",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Dataset folder: a new one, or one this command wrote before.",
)
@click.option("--expected-count", default=EXPECTED, show_default=True, type=click.IntRange(min=1))
def main(source, out, expected_count):
    out = Path(out)
    if is_complete(out, expected_count):
        click.echo(f"{out}/ is already complete ({expected_count} images); nothing to do.")
        return
    with ResultsFolder(out, "dataset_download.py", "--out") as tmp:
        files = parquet_files(source)
        if not files:
            raise click.ClickException(
                f"{source} holds no parquet file; give the dataset's parquet file."
            )
        encoded = read_images(files)
        if len(encoded) != expected_count:
            raise click.ClickException(
                f"{source} holds {len(encoded)} images, not the expected {expected_count}; "
                "check that it is the few-shot dog dataset."
            )
        try:
            resized = write_images(encoded, tmp)
        except OSError as error:
            raise click.ClickException(
                f"Could not write the images into {out} ({error.strerror}); nothing was "
                "changed: free some disk space and rerun."
            ) from None
        if not is_complete(tmp, expected_count):
            raise click.ClickException(
                f"writing {out} failed; check the free disk space and rerun."
            )
    note = f" ({resized} resized to {RESOLUTION}x{RESOLUTION})" if resized else ""
    click.echo(f"wrote {expected_count} images of {RESOLUTION}x{RESOLUTION} into {out}/{note}.")


if __name__ == "__main__":
    sys.exit(main())
