"""train.py end to end on the tiny config: the handout's three settings, outputs, bad input."""

import json
import os
import pickle

import pytest
from click.testing import CliRunner
from gan_helpers import CUTOUT, R1, TRAINING, only_run_dir, run_train, tiny_args, write_images

from training.checkpoint import load_checkpoint

SETTINGS = [  # the handout's three runs: (R1, DiffAug, run-folder flags), and their TODOs
    pytest.param(False, False, "nor1-noaug", marks=pytest.mark.needs(*TRAINING)),
    pytest.param(True, False, "r1-noaug", marks=pytest.mark.needs(*TRAINING, R1)),
    pytest.param(True, True, "r1-diffaug", marks=pytest.mark.needs(*TRAINING, R1, CUTOUT)),
]


def invoke(args):
    """train.py in this process (fast: torch is already imported)."""
    from train import main

    return CliRunner().invoke(main, args, catch_exceptions=False)


@pytest.mark.slow
@pytest.mark.parametrize("r1,aug,tag", SETTINGS)
def test_handout_setting_trains_and_writes_named_outputs(tmp_path, tiny_data, r1, aug, tag):
    # 5 iterations: iteration 0 runs all four phases (Greg and Dreg at multiples of 4 and 16),
    # iteration 4 runs Greg again; snapshots at 2, 4 and the end (5)
    result = run_train(tiny_args(tmp_path / "runs", tiny_data, r1, aug, 5, 2))
    assert result.returncode == 0, result.stderr
    run = only_run_dir(tmp_path / "runs")
    assert run.name == f"00000-dogs-tiny-{tag}"
    lines = (run / "log.txt").read_text().splitlines()
    assert lines[0] == f"use_r1_regularization={r1} use_diffaug={aug}"
    assert any(line.startswith("parameters: G=") for line in lines)
    names = {p.name for p in run.iterdir()}
    for name in ("reals.png", "stats.jsonl", "latest", "fakes000000iter_trained.png",
                 "fakes000002iter_trained.png", "fakes000004iter_trained.png",
                 "fakes000005iter_trained.png", "checkpoint-000005.pt", "checkpoint-000004.pt"):  # fmt: skip
        assert name in names, f"{name} missing from {sorted(names)}"
    assert "checkpoint-000002.pt" not in names, "only the newest two checkpoints are kept"
    assert (run / "latest").read_text().strip() == "checkpoint-000005.pt"

    records = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == [5]
    losses = records[0]["losses"]
    assert {"Loss/G/loss", "Loss/D/loss_real", "Loss/D/loss_fake", "Loss/G/reg"} <= set(losses)
    assert ("Loss/D/reg" in losses) == r1, "the R1 term is logged exactly when R1 is on"
    assert records[0]["s_per_kimg"] > 0

    state = load_checkpoint(run / "checkpoint-000005.pt")
    assert state["iteration"] == 5
    assert state["options"]["use_r1_regularization"] is r1
    assert state["options"]["use_diffaug"] is aug
    for key in ("G", "D", "G_ema", "opt_G", "opt_D", "loss", "sampler", "rng"):
        assert key in state
    # lazy regularization: lr and betas corrected by interval / (interval + 1)
    g_group, d_group = state["opt_G"]["param_groups"][0], state["opt_D"]["param_groups"][0]
    assert g_group["lr"] == pytest.approx(0.002 * 4 / 5)
    assert d_group["lr"] == pytest.approx(0.002 * 16 / 17)
    assert d_group["betas"][1] == pytest.approx(0.99 ** (16 / 17))
    # G_ema trails G (half-life 10 kimg): different from G, but only slightly after 5 iterations
    gap = max((state["G"][k] - state["G_ema"][k]).abs().max().item() for k in state["G"])
    assert 0 < gap < 0.1


def test_dry_run_prints_parameter_counts_and_writes_nothing(tmp_path, tiny_data):
    result = invoke(tiny_args(tmp_path / "runs", tiny_data) + ["--dry-run"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    param_lines = [line for line in lines if line.startswith("parameters: ")]
    assert len(param_lines) == 1
    g, d = (int(part.split("=")[1]) for part in param_lines[0].split()[1:])
    assert g > 0 and d > 0
    assert not (tmp_path / "runs").exists()


def test_low_shot_parameter_counts_match_the_original(tmp_path):
    data = write_images(tmp_path / "dogs", count=2, size=256)
    result = invoke(["--outdir", str(tmp_path / "r"), "--data", str(data), "--dry-run",
                     "--use_r1_regularization", "true", "--use_diffaug", "FALSE"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "parameters: G=28458402 D=28864129" in result.output


def test_other_spelling_of_the_data_folder_is_used_with_a_note(tmp_path, monkeypatch):
    write_images(tmp_path / "many_shot_dog", count=2)
    monkeypatch.chdir(tmp_path)
    result = invoke(tiny_args("runs", "many-shot-dog") + ["--dry-run"])
    assert result.exit_code == 0, result.output
    assert "using many_shot_dog instead" in result.output


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A checkpoint of a 2-iteration tiny run (trained in this process)."""
    root = tmp_path_factory.mktemp("ckpt")
    data = write_images(root / "dogs")
    result = invoke(tiny_args(root / "runs", data, True, False, 2, 2))
    assert result.exit_code == 0, result.output
    return only_run_dir(root / "runs") / "checkpoint-000002.pt", data


@pytest.mark.needs(*TRAINING, R1)  # the run of tiny_checkpoint
def test_checkpoint_path_starts_a_new_run_from_those_weights(tmp_path, tiny_checkpoint):
    checkpoint, data = tiny_checkpoint
    course = tmp_path / "checkpoint" / "part2-10K.pkl"  # the course's name for such a file
    from training.checkpoint import export_weights

    export_weights(checkpoint, course)
    args = tiny_args(tmp_path / "runs", data, True, False, 1, 1, "--checkpoint_path", course)
    result = invoke(args)
    assert result.exit_code == 0, result.output
    run = only_run_dir(tmp_path / "runs")
    assert f"initialized G, D and G_ema from {course}" in (run / "log.txt").read_text()
    start, after = load_checkpoint(course), load_checkpoint(run / "checkpoint-000001.pt")
    assert after["iteration"] == 1, "a run from --checkpoint_path counts its own iterations"
    # one Adam step away from the given weights, not from a fresh initialization
    moved = max((after["G"][k] - start["G"][k]).abs().max().item() for k in start["G"])
    assert 0 < moved < 0.05
    # the checkpoint's G_ema is kept as an average, with the handout's half-life from the start
    assert after["options"]["config"]["ema_rampup"] is None
    weights = [k for k in start["G"] if k.endswith("weight")]
    ema_step = max((after["G_ema"][k] - start["G_ema"][k]).abs().max().item() for k in weights)
    g_step = max((after["G"][k] - start["G"][k]).abs().max().item() for k in weights)
    assert 0 < ema_step < 0.01 * g_step  # 10 kimg: 0.03% of the way to G with 4 images


@pytest.mark.needs(*TRAINING, R1)  # the run of tiny_checkpoint
def test_checkpoint_of_another_config_is_refused(tmp_path, tiny_checkpoint):
    checkpoint, _ = tiny_checkpoint
    data = write_images(tmp_path / "dogs", count=2, size=256)
    result = invoke(["--outdir", str(tmp_path / "runs"), "--data", str(data), "--cfg", "low_shot",
                     "--use_r1_regularization", "True", "--use_diffaug", "True",
                     "--checkpoint_path", str(checkpoint)])  # fmt: skip
    assert result.exit_code == 1
    assert (
        "was trained with config 'tiny' at 32x32 and does not fit --cfg low_shot" in result.output
    )
    assert not (tmp_path / "runs").exists()


class _Exploit:
    def __reduce__(self):
        import os

        return (os.mkdir, (self.target,))


def test_pickled_code_in_a_checkpoint_is_never_run(tmp_path, tiny_data):
    exploit = _Exploit()
    exploit.target = str(tmp_path / "pwned")
    bad = tmp_path / "part1-10K.pkl"
    bad.write_bytes(pickle.dumps({"G": exploit}, protocol=2))
    result = invoke(tiny_args(tmp_path / "runs", tiny_data) + ["--checkpoint_path", str(bad)])
    assert result.exit_code == 1
    assert "is neither a complete checkpoint written by this code" in result.output
    assert f"calls {os.mkdir.__module__}.mkdir" in result.output
    assert not (tmp_path / "pwned").exists()
    assert "Traceback" not in result.output


def _bad_input_cases(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir(parents=True)
    corrupt = write_images(tmp_path / "corrupt", count=3)
    (corrupt / "1.png").write_bytes(b"not a png at all")
    wide = write_images(tmp_path / "wide", count=2, size=(48, 32))
    return [
        (
            tiny_args(tmp_path / "r", tmp_path / "missing"),
            "does not exist; run `python dataset_download.py`",
        ),
        (tiny_args(tmp_path / "r", empty), "holds no .png or .jpg images"),
        (tiny_args(tmp_path / "r", corrupt), "cannot read image"),
        (tiny_args(tmp_path / "r", wide), "is 48x32, not square"),
    ]


def test_bad_data_gives_one_sentence_and_no_run_folder(tmp_path):
    for args, message in _bad_input_cases(tmp_path):
        result = invoke(args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output, result.output
        assert "Traceback" not in result.output
        assert not (tmp_path / "r").exists(), "bad input must not leave a run folder"
    corrupt = invoke(_bad_input_cases(tmp_path / "again")[2][0]).output
    assert "1.png" in corrupt, "the corrupt file is named"


@pytest.mark.parametrize(
    "change,message",
    [
        (("--use_diffaug", "yes"), "'yes' is not True or False"),
        (("--use_r1_regularization", None), "Missing option '--use_r1_regularization'"),
        (("--cfg", "huge"), "Invalid value for '--cfg'"),
        (("--iters", "0"), "Invalid value for '--iters'"),
    ],
)
def test_bad_flags_are_refused(tmp_path, tiny_data, change, message):
    args = tiny_args(tmp_path / "r", tiny_data)
    flag, value = change
    i = args.index(flag)
    args[i : i + 2] = [] if value is None else [flag, value]
    result = invoke(args)
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "r").exists()


@pytest.mark.needs(*TRAINING, R1)  # the run of tiny_checkpoint
def test_resume_refuses_weights_only_other_flags_and_other_data(tmp_path, tiny_checkpoint):
    from training.checkpoint import export_weights

    checkpoint, data = tiny_checkpoint
    weights = export_weights(checkpoint, tmp_path / "part2-10K.pkl")
    other_data = write_images(tmp_path / "dogs", count=5)
    cases = [
        (tiny_args(tmp_path / "r", data, True, False, 3) + ["--resume", weights], "holds weights only"),
        (tiny_args(tmp_path / "r", data, True, True, 3) + ["--resume", checkpoint], "use_diffaug=False, not True"),
        (tiny_args(tmp_path / "r", other_data, True, False, 3) + ["--resume", checkpoint], "same --data"),
    ]  # fmt: skip
    for args, message in cases:
        result = invoke(list(map(str, args)))
        assert result.exit_code == 1 and message in result.output, result.output
    assert load_checkpoint(checkpoint)["iteration"] == 2, "the refused runs changed nothing"


def test_unfilled_todo_names_the_block_and_leaves_no_run_folder(tmp_path, tiny_data, monkeypatch):
    from training import training_loop

    def starter(self, phase, real_img, gen_z, gain):
        raise NotImplementedError("TODO #1 in GAN_homework/training/loss.py")

    monkeypatch.setattr(training_loop.StyleGAN2Loss, "accumulate_gradients", starter)
    result = invoke(tiny_args(tmp_path / "runs", tiny_data))
    assert result.exit_code == 1
    assert "TODO #1 in GAN_homework/training/loss.py is not implemented yet" in result.output
    assert list((tmp_path / "runs").iterdir()) == []


def test_another_not_implemented_error_is_not_taken_for_a_todo(tmp_path, tiny_data, monkeypatch):
    from training import training_loop

    def missing_operation(self, phase, real_img, gen_z, gain):
        raise NotImplementedError("aten::foo is not implemented for the MPS device")

    monkeypatch.setattr(training_loop.StyleGAN2Loss, "accumulate_gradients", missing_operation)
    with pytest.raises(NotImplementedError, match="MPS device"):  # a traceback, not "fill it in"
        invoke(tiny_args(tmp_path / "runs", tiny_data))


@pytest.fixture
def one_thread():
    """One torch thread, as train.py runs in a subprocess here (OMP_NUM_THREADS=1): generating
    1000 images is several times slower with two threads on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.needs(*TRAINING)
def test_kid_at_every_snapshot_into_metrics_jsonl_and_resume_appends(
    tmp_path, tiny_data, one_thread
):
    import math

    import torch
    from test_calc_metrics import TinyDetector, script

    detector = script(TinyDetector(), tmp_path / "tiny_detector.pt")
    plain = invoke(tiny_args(tmp_path / "plain", tiny_data, False, False, 4, 2))
    assert plain.exit_code == 0, plain.output
    plain_run = only_run_dir(tmp_path / "plain")
    assert not (plain_run / "metrics.jsonl").exists(), "KID is off by default"

    args = tiny_args(tmp_path / "runs", tiny_data, False, False, 4, 2)
    result = invoke(args + ["--metrics", "kid", "--detector", str(detector)])
    assert result.exit_code == 0, result.output
    run = only_run_dir(tmp_path / "runs")
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == [2, 4], "one line per snapshot"
    for r in records:
        assert r["metric"] == "kid" and math.isfinite(r["value"])
        assert (r["num_gen"], r["num_real"]) == (1000, 8)
    assert records[0]["value"] != records[1]["value"], "the generator changed between snapshots"
    kid_lines = [line for line in (run / "log.txt").read_text().splitlines() if "KID " in line]
    assert len(kid_lines) == 2 and all(line.endswith(" s)") for line in kid_lines), kid_lines
    # measuring KID neither draws from the training RNG streams nor changes the weights
    with_kid, without = (load_checkpoint(r / "checkpoint-000004.pt") for r in (run, plain_run))
    assert all(torch.equal(with_kid["G"][k], without["G"][k]) for k in without["G"])

    resumed = invoke(
        tiny_args(tmp_path / "runs", tiny_data, False, False, 6, 2)
        + ["--resume", "auto", "--metrics", "kid", "--detector", str(detector)]
    )
    assert resumed.exit_code == 0, resumed.output
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in lines] == [2, 4, 6]
    assert json.loads(lines[1]) == records[1], "the earlier lines are kept as they were"


def test_kid_without_the_detector_offline_is_one_sentence_before_training(
    tmp_path, tiny_data, monkeypatch
):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = invoke(tiny_args(tmp_path / "runs", tiny_data) + ["--metrics", "kid"])
    assert result.exit_code == 1, result.output
    message = result.output.strip().splitlines()[-1]
    assert message.startswith("Error: the default feature network is not in the cache"), message
    assert message.endswith("`.") and "slurm/setup_env.sh models" in message
    assert not (tmp_path / "runs").exists(), "nothing was started"

    missing = invoke(
        tiny_args(tmp_path / "runs", tiny_data) + ["--metrics", "kid", "--detector", "nope.pt"]
    )
    assert missing.exit_code == 1 and "--detector nope.pt does not exist" in missing.output
    assert not (tmp_path / "runs").exists()
