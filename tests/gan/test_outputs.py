"""outputs.atomic_write, the one way the GAN code writes a file: whole or not at all."""

import os
import stat

import pytest
from outputs import atomic_write


def test_a_write_lands_whole_and_readable(tmp_path):
    target = tmp_path / "grid.png"
    atomic_write(target, lambda f: f.write(b"new"))
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert os.listdir(tmp_path) == ["grid.png"]


@pytest.mark.parametrize("existing", [None, b"old"])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path, existing):
    target = tmp_path / "checkpoint-000008.pt"
    if existing is not None:
        target.write_bytes(existing)

    def half_then_fail(f):
        f.write(b"half a file")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, half_then_fail)
    assert (target.read_bytes() if target.exists() else None) == existing
    assert sorted(os.listdir(tmp_path)) == ([target.name] if existing else [])


def test_an_interrupt_also_removes_the_temporary_file(tmp_path):
    def interrupted(f):
        f.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "log.png", interrupted)
    assert os.listdir(tmp_path) == []
