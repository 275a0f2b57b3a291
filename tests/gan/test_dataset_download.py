"""dataset_download.py on a local parquet file shaped like huggan/few-shot-dog (no network)."""

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from dataset_download import main
from outputs import MARKER
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
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "0.png", "1.png", "2.png", "3.png"]
    for p in out.glob("*.png"):
        with Image.open(p) as image:
            assert image.size == (256, 256) and image.mode == "RGB"
    again = invoke("--source", source, "--out", out, "--expected-count", 4)
    assert again.exit_code == 0 and "already complete" in again.output


def tree(folder):
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None
            for p in sorted(folder.rglob("*"))}  # fmt: skip


def test_a_folder_of_someone_elses_images_is_refused_and_left_alone(tmp_path):
    source = make_parquet(tmp_path / "train.parquet", [256, 256])
    out = tmp_path / "dogs"
    out.mkdir()
    Image.new("RGB", (8, 8)).save(out / "0.png")  # the user's own pictures, not ours
    Image.new("RGB", (8, 8)).save(out / "holiday.png")
    before = tree(tmp_path)
    result = invoke("--source", source, "--out", out, "--expected-count", 2)
    assert result.exit_code == 2, result.output
    assert "holds files that this command did not write (0.png, holiday.png)" in result.output
    assert "nothing was changed" in result.output
    assert tree(tmp_path) == before


def test_an_incomplete_folder_it_wrote_is_replaced(tmp_path):
    source = make_parquet(tmp_path / "train.parquet", [256, 256])
    out = tmp_path / "dogs"
    assert invoke("--source", source, "--out", out, "--expected-count", 2).exit_code == 0
    (out / "1.png").unlink()  # damaged later
    result = invoke("--source", source, "--out", out, "--expected-count", 2)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "0.png", "1.png"]
    assert not list(tmp_path.glob(".dogs*")), "no temporary folder left"


def test_the_current_folder_is_refused(tmp_path, monkeypatch):
    source = make_parquet(tmp_path / "train.parquet", [256, 256])
    monkeypatch.chdir(tmp_path)
    result = invoke("--source", source, "--out", ".", "--expected-count", 2)
    assert result.exit_code == 2 and "is the folder you run from" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.parquet"]


def test_the_leftover_of_a_killed_run_is_removed_by_the_next_run(tmp_path):
    source = make_parquet(tmp_path / "train.parquet", [256, 256])
    killed = tmp_path / ".dogs.tmp-killed"
    killed.mkdir()
    (killed / MARKER).write_text("dataset_download.py\n")
    Image.new("RGB", (256, 256)).save(killed / "0.png")
    someone = tmp_path / ".dogs.tmp-notes"  # the same pattern, but not written by us
    someone.mkdir()
    result = invoke("--source", source, "--out", tmp_path / "dogs", "--expected-count", 2)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [".dogs.tmp-notes", "dogs",
                                                          "train.parquet"]  # fmt: skip


@pytest.mark.parametrize("content", [b"", b"PAR1 this is not parquet", b"<html>Not found</html>"])
def test_a_corrupt_parquet_file_is_one_sentence(tmp_path, content):
    source = tmp_path / "train.parquet"
    source.write_bytes(content)
    result = invoke("--source", source, "--out", tmp_path / "dogs")
    assert result.exit_code == 1
    assert f"Error: {source} is not a readable parquet file" in result.output
    assert "download it again" in result.output and len(result.output.strip().splitlines()) == 1
    assert ". " not in result.output.strip(), "one sentence"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.parquet"]


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
