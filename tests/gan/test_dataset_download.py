"""dataset_download.py on a local parquet file shaped like huggan/few-shot-dog (no network)."""

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from dataset_download import main
from PIL import Image


def make_parquet(path, sizes, formats=None):
    rows = []
    for i, size in enumerate(sizes):
        buffer = io.BytesIO()
        mode = "L" if i == 1 else "RGB"
        Image.new(
            mode, (size, size), color=(i * 40) % 255 if mode == "L" else (i * 40, 90, 200)
        ).save(buffer, format=(formats or {}).get(i, "PNG"))
        rows.append({"bytes": buffer.getvalue(), "path": f"{i}.png"})
    pq.write_table(pa.table({"image": rows}), path)
    return path


def invoke(*args):
    return CliRunner().invoke(main, list(map(str, args)), catch_exceptions=False)


def test_writes_numbered_rgb_pngs_and_skips_when_complete(tmp_path):
    source = make_parquet(tmp_path / "train.parquet", [256, 256, 256, 128], {2: "JPEG"})
    out = tmp_path / "many_shot_dog"
    result = invoke("--source", source, "--out", out, "--expected-count", 4)
    assert result.exit_code == 0, result.output
    assert "(1 resized to 256x256)" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["0.png", "1.png", "2.png", "3.png"]
    for p in out.iterdir():
        with Image.open(p) as image:
            assert image.size == (256, 256) and image.mode == "RGB"
    again = invoke("--source", source, "--out", out, "--expected-count", 4)
    assert again.exit_code == 0 and "already complete" in again.output


def test_incomplete_folder_is_replaced(tmp_path):
    source = make_parquet(tmp_path / "train.parquet", [256, 256])
    out = tmp_path / "dogs"
    out.mkdir()
    Image.new("RGB", (8, 8)).save(out / "0.png")  # an interrupted earlier attempt
    result = invoke("--source", source, "--out", out, "--expected-count", 2)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["0.png", "1.png"]
    assert not list(tmp_path.glob(".dogs*")), "no temporary folder left"


@pytest.mark.parametrize("folder_of_parquets", [False, True])
def test_wrong_count_is_refused_and_nothing_is_written(tmp_path, folder_of_parquets):
    source = make_parquet(tmp_path / "train.parquet", [256, 256, 256])
    out = tmp_path / "many_shot_dog"
    result = invoke("--source", tmp_path if folder_of_parquets else source, "--out", out)
    assert result.exit_code == 1
    assert "holds 3 images, not the expected 389" in result.output
    assert not out.exists() and not list(tmp_path.glob(".many_shot_dog*"))


def test_offline_download_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = invoke("--out", tmp_path / "many_shot_dog")
    assert result.exit_code == 1
    assert "without network" in result.output and "--source PATH/TO/FILE.parquet" in result.output
    assert not (tmp_path / "many_shot_dog").exists()
