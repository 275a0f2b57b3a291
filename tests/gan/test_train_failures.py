"""train.py when writing fails or an image cannot be decoded: one sentence, a non-zero exit, and
nothing half-written (the last complete checkpoint stays, and resuming from it works)."""

import errno
import json
import os
import struct
import zlib

import pytest
from click.testing import CliRunner
from gan_helpers import TRAINING, only_run_dir, tiny_args, write_images

from training.checkpoint import load_checkpoint

DISK_FULL = OSError(errno.ENOSPC, "No space left on device")


def invoke(args):
    """train.py in this process (fast: torch is already imported)."""
    from train import main

    return CliRunner().invoke(main, list(map(str, args)), catch_exceptions=False)


def assert_one_sentence(result, *parts):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    error = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(error) == 1 and error[0].endswith("."), result.output
    for part in parts:
        assert part in error[0], error[0]


def leftovers(folder):
    """Temporary files (written under a dot name, then renamed) anywhere below `folder`."""
    return [p for p in folder.rglob(".*")]


# ------------------------------------------------------------------ the output folder
@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_outdir_is_refused_before_training(tmp_path, tiny_data):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = invoke(tiny_args(locked / "runs", tiny_data))
        assert_one_sentence(result, f"--outdir {locked / 'runs'} cannot be written", "Permission")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_an_outdir_that_cannot_be_written_is_refused_before_the_data_is_read(
    tmp_path, tiny_data, monkeypatch
):
    import outputs

    def read_only_file_system(dir):
        raise OSError(errno.EROFS, "Read-only file system", dir)

    loaded = []
    monkeypatch.setattr(outputs.tempfile, "TemporaryFile", read_only_file_system)
    monkeypatch.setattr("training.dataset.ImageDataset", lambda *a, **k: loaded.append(1))
    result = invoke(tiny_args(tmp_path / "runs", tiny_data))
    assert_one_sentence(result, "cannot be written (Read-only file system)", "nothing was started")
    assert not loaded, "the check comes before the dataset is decoded"
    assert not (tmp_path / "runs").exists()


def test_an_outdir_below_a_file_is_refused(tmp_path, tiny_data):
    (tmp_path / "notes.txt").write_text("mine")
    result = invoke(tiny_args(tmp_path / "notes.txt" / "runs", tiny_data))
    assert_one_sentence(result, f"{tmp_path / 'notes.txt'} is a file, not a folder")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_an_existing_writable_outdir_passes_the_check_and_keeps_no_probe(tmp_path, tiny_data):
    outdir = tmp_path / "runs"
    outdir.mkdir()
    result = invoke(tiny_args(outdir, tiny_data) + ["--dry-run"])
    assert result.exit_code == 0, result.output
    assert list(outdir.iterdir()) == []


# ------------------------------------------------------------------ images PIL refuses
def png_header(path, width, height):
    """A PNG that declares width x height pixels (the decoder's bomb check reads only this)."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)


@pytest.mark.parametrize(
    "side",
    [
        20_000,  # 400M pixels, over twice PIL's limit: PIL raises DecompressionBombError
        10_000,  # 100M pixels, over the limit: PIL only warns, the dataset refuses it too
    ],
)
def test_a_decompression_bomb_is_named_in_one_sentence(tmp_path, side):
    data = write_images(tmp_path / "dogs", count=3)
    png_header(data / "2.png", side, side)
    result = invoke(tiny_args(tmp_path / "runs", data))
    assert_one_sentence(
        result, f"image {data / '2.png'} has more than", "decompression bomb", "shrink it to 32x32"
    )
    assert not (tmp_path / "runs").exists()


def test_an_image_whose_decoder_fails_is_named_in_one_sentence(tmp_path):
    data = write_images(tmp_path / "dogs", count=3)
    whole = (data / "1.png").read_bytes()
    (data / "1.png").write_bytes(whole[: len(whole) // 2])  # cut off half way, like a failed copy
    result = invoke(tiny_args(tmp_path / "runs", data))
    assert_one_sentence(result, f"cannot read image {data / '1.png'}", "delete or replace")


# ------------------------------------------------------------------ disk full during a run
class FullFile:
    """A file that takes `room` more bytes, then fails as a full disk does."""

    def __init__(self, file, room):
        self.file, self.room = file, room

    def write(self, data):
        if len(data) > self.room:
            self.file.write(bytes(data[: self.room]))
            self.room = 0
            raise DISK_FULL
        self.room -= len(data)
        return self.file.write(data)

    def flush(self):
        self.file.flush()


@pytest.mark.needs(*TRAINING)
def test_disk_full_while_saving_a_checkpoint_keeps_the_last_one(tmp_path, tiny_data, monkeypatch):
    from training import checkpoint

    real_save, calls = checkpoint.torch.save, []

    def save(obj, file):
        calls.append(file)
        # the checkpoint of iteration 2 finds 100 kB free (torch then raises a RuntimeError of its
        # own, as it does on a real full disk)
        real_save(obj, FullFile(file, 100_000) if len(calls) == 2 else file)

    monkeypatch.setattr(checkpoint.torch, "save", save)
    args = tiny_args(tmp_path / "runs", tiny_data, False, False, 2, 1)
    result = invoke(args)
    run = only_run_dir(tmp_path / "runs")
    assert_one_sentence(
        result,
        f"could not write into {run} (No space left on device)",
        "its last complete checkpoint, checkpoint-000001.pt, is kept",
        "free some disk space and continue with the same command plus --resume auto",
    )
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-000001.pt"]
    assert (run / "latest").read_text().strip() == "checkpoint-000001.pt"
    assert load_checkpoint(run / "checkpoint-000001.pt")["iteration"] == 1
    assert leftovers(tmp_path) == [], "no temporary file is left"
    for name in ("log.txt", "stats.jsonl"):
        assert (run / name).read_text().endswith("\n"), f"{name} ends with a whole line"

    monkeypatch.undo()  # space freed: the same command with --resume auto finishes the run
    resumed = invoke(args + ["--resume", "auto"])
    assert resumed.exit_code == 0, resumed.output
    assert load_checkpoint(run / "checkpoint-000002.pt")["iteration"] == 2
    assert "resumed from" in (run / "log.txt").read_text()


def test_disk_full_before_the_first_checkpoint_removes_the_new_run(
    tmp_path, tiny_data, monkeypatch
):
    from training import training_loop

    def disk_full(self):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.run_dir / "reals.png"))

    monkeypatch.setattr(training_loop.Trainer, "save_reals", disk_full)
    result = invoke(tiny_args(tmp_path / "runs", tiny_data))
    assert_one_sentence(
        result, "(No space left on device); the run had no checkpoint yet and was removed"
    )
    assert list((tmp_path / "runs").iterdir()) == []


class DiskFullAfter:
    """The os module, except that writes stop with ENOSPC after `room` bytes."""

    def __init__(self, room):
        self.room = room

    def __getattr__(self, name):
        return getattr(os, name)

    def write(self, fd, data):
        if self.room <= 0:
            raise DISK_FULL
        written = os.write(fd, bytes(data[: self.room]))
        self.room -= written
        return written


def test_a_log_line_is_appended_whole_or_not_at_all(tmp_path, monkeypatch):
    import outputs

    path = tmp_path / "stats.jsonl"
    outputs.append_line(path, json.dumps({"iteration": 50}))
    monkeypatch.setattr(outputs, "os", DiskFullAfter(room=10))
    with pytest.raises(OSError, match="No space left"):
        outputs.append_line(path, json.dumps({"iteration": 100, "losses": {}}))
    assert path.read_text() == '{"iteration": 50}\n', "the 10 bytes that fitted are cut off again"
    monkeypatch.setattr(outputs, "os", DiskFullAfter(room=1000))
    outputs.append_line(path, "x" * 20)
    assert path.read_text().splitlines() == ['{"iteration": 50}', "x" * 20]
