"""The course's checkpoints (the original code's StyleGAN2-ADA pickles) load without running a line.

The files are built here as the original code writes them, at the tiny config with known tensors:
every network and layer is pickled as torch_utils.persistence._reconstruct_persistent_obj(meta),
meta = {type, version, module_src, class_name, state}, state = the module's __dict__ (OrderedDict
_parameters/_buffers/_modules, a set, float64 numpy gains, _init_kwargs as a dnnlib.util.EasyDict),
in a torch.save zip (the course's files) and in a plain pickle.dump (NVIDIA's snapshots). Their
module_src, if it ever ran, would create a marker file.
"""

import io
import os
import pickle
import pickletools
import subprocess
import sys
import types
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from gan_helpers import CUTOUT, GAN_DIR, R1, TRAINING, env, only_run_dir, tiny_args

from training import legacy
from training.checkpoint import (
    FORMAT,
    CheckpointError,
    check_architecture,
    export_weights,
    load_checkpoint,
)
from training.config import CONFIGS
from training.networks import Discriminator, Generator
from training.ops import fir_filter

MARKER = "HW5_TEST_MODULE_SRC_RAN"
MODULE_SRC = f"import os, pathlib; pathlib.Path(os.environ[{MARKER!r}]).touch()"
RES, Z, W, MAPPING, BASE, CMAX, MBSTD = 32, 32, 32, 2, 512, 32, 4  # the tiny config


def _reconstruct_persistent_obj(meta):
    """What the original code does when its files are unpickled: run module_src."""
    exec(meta["module_src"], {})


class EasyDict(dict):
    """dnnlib.util.EasyDict of the original code (pickled under that name)."""


_reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
EasyDict.__module__ = "dnnlib.util"


@pytest.fixture(autouse=True)
def original_code(monkeypatch, tmp_path):
    """The original code's modules, importable while a test runs (so that pickling names them and
    an ordinary unpickler would run them); the marker that their module_src would create."""
    persistence = types.ModuleType("torch_utils.persistence")
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    util = types.ModuleType("dnnlib.util")
    util.EasyDict = EasyDict
    for name, module in (
        ("torch_utils", types.ModuleType("torch_utils")),
        ("torch_utils.persistence", persistence),
        ("dnnlib", types.ModuleType("dnnlib")),
        ("dnnlib.util", util),
    ):
        monkeypatch.setitem(sys.modules, name, module)
    marker = tmp_path / "module_src_ran"
    monkeypatch.setenv(MARKER, str(marker))
    yield
    assert not marker.exists(), "code from the file ran"


class Persistent:
    """One of the original code's networks or layers, pickled as its persistence module does."""

    def __init__(
        self, class_name, params=None, buffers=None, layers=None, args=(), kwargs=None, **attrs
    ):
        self.class_name = class_name
        self.state = {
            "training": True,
            "_parameters": OrderedDict(
                (k, None if v is None else torch.nn.Parameter(v)) for k, v in (params or {}).items()
            ),
            "_buffers": OrderedDict(buffers or {}),
            "_non_persistent_buffers_set": set(),
            "_backward_hooks": OrderedDict(),
            "_forward_hooks": OrderedDict(),
            "_forward_pre_hooks": OrderedDict(),
            "_state_dict_hooks": OrderedDict(),
            "_load_state_dict_pre_hooks": OrderedDict(),
            "_modules": OrderedDict(layers or {}),
            **attrs,
            "_init_args": tuple(args),
            "_init_kwargs": EasyDict(kwargs or {}),
        }

    def __reduce__(self):
        meta = dict(type="class", version=6, module_src=MODULE_SRC, class_name=self.class_name,
                    state=self.state)  # fmt: skip
        return _reconstruct_persistent_obj, (meta,)


def tensors_of(obj, prefix=""):
    """Their state_dict: every parameter and buffer of a Persistent tree, by dotted name."""
    found = {}
    for group in ("_parameters", "_buffers"):
        for name, tensor in obj.state[group].items():
            if tensor is not None:
                found[prefix + name] = tensor.detach()
    for name, layer in obj.state["_modules"].items():
        found.update(tensors_of(layer, f"{prefix}{name}."))
    return found


class OriginalNetworks:
    """The original code's G and D at the tiny config, every tensor random (known, distinct)."""

    def __init__(self, seed=0):
        self.gen = torch.Generator().manual_seed(seed)

    def rand(self, *shape):
        return torch.randn(shape, generator=self.gen)

    @staticmethod
    def channels(res):
        return min(BASE // res, CMAX)

    def fc(self, in_features, out_features, lr_multiplier=1, bias_init=0):
        return Persistent(
            "FullyConnectedLayer",
            params={
                "weight": self.rand(out_features, in_features),
                "bias": self.rand(out_features),
            },
            args=(in_features, out_features),
            kwargs=dict(lr_multiplier=lr_multiplier, bias_init=bias_init),
            activation="lrelu",
            weight_gain=np.float64(lr_multiplier / np.sqrt(in_features)),
            bias_gain=lr_multiplier,
        )

    def conv(self, in_channels, out_channels, kernel, bias=True, down=1):
        return Persistent(
            "Conv2dLayer",
            params={
                "weight": self.rand(out_channels, in_channels, kernel, kernel),
                "bias": self.rand(out_channels) if bias else None,
            },
            buffers={"resample_filter": fir_filter()},
            args=(in_channels, out_channels),
            kwargs=dict(kernel_size=kernel, bias=bias, down=down, conv_clamp=256),
            weight_gain=np.float64(1 / np.sqrt(in_channels * kernel**2)),
            act_gain=np.float64(np.sqrt(2)),
        )

    def synthesis_layer(self, cin, cout, res, up, channels_last=False):
        weight = self.rand(cout, cin, 3, 3)
        if channels_last:  # how the original stores the weights of fp16 blocks
            weight = weight.to(memory_format=torch.channels_last)
        return Persistent(
            "SynthesisLayer",
            params={"weight": weight, "noise_strength": self.rand(), "bias": self.rand(cout)},
            buffers={"resample_filter": fir_filter(), "noise_const": self.rand(res, res)},
            layers={"affine": self.fc(W, cin, bias_init=1)},
            args=(cin, cout),
            kwargs=dict(w_dim=W, resolution=res, up=up, conv_clamp=256),
            act_gain=np.float64(np.sqrt(2)),
        )

    def synthesis_block(self, cin, cout, res):
        layers = {}
        if cin:
            layers["conv0"] = self.synthesis_layer(cin, cout, res, 2, channels_last=res == RES)
        layers["conv1"] = self.synthesis_layer(cout, cout, res, 1, channels_last=res == RES)
        layers["torgb"] = Persistent(
            "ToRGBLayer",
            params={"weight": self.rand(3, cout, 1, 1), "bias": self.rand(3)},
            layers={"affine": self.fc(W, cout, bias_init=1)},
            args=(cout, 3),
            kwargs=dict(w_dim=W, conv_clamp=256),
            weight_gain=np.float64(1 / np.sqrt(cout)),
        )
        return Persistent(
            "SynthesisBlock",
            params={"const": self.rand(cout, 4, 4)} if cin == 0 else {},
            buffers={"resample_filter": fir_filter()},
            layers=layers,
            args=(cin, cout),
            kwargs=dict(w_dim=W, resolution=res, img_channels=3, is_last=res == RES),
        )

    def generator(self, **changes):
        resolutions = [2**i for i in range(2, RES.bit_length())]  # 4, 8, ..., RES
        blocks = {
            f"b{res}": self.synthesis_block(self.channels(res // 2) if res > 4 else 0,
                                            self.channels(res), res)
            for res in resolutions
        }  # fmt: skip
        synthesis = Persistent(
            "SynthesisNetwork",
            layers=blocks,
            kwargs=dict(w_dim=W, img_resolution=RES, img_channels=3, channel_base=BASE,
                        channel_max=CMAX, num_fp16_res=0, conv_clamp=256),
            block_resolutions=resolutions,
        )  # fmt: skip
        mapping = Persistent(
            "MappingNetwork",
            buffers={"w_avg": self.rand(W)},
            layers={f"fc{i}": self.fc(W if i else Z, W, lr_multiplier=0.01) for i in range(MAPPING)},
            kwargs=dict(z_dim=Z, c_dim=0, w_dim=W, num_ws=None, num_layers=MAPPING),
        )  # fmt: skip
        kwargs = dict(
            z_dim=Z, c_dim=0, w_dim=W, img_resolution=RES, img_channels=3,
            mapping_kwargs=EasyDict(num_layers=MAPPING),
            synthesis_kwargs=EasyDict(channel_base=BASE, channel_max=CMAX, num_fp16_res=0,
                                      conv_clamp=256),
        )  # fmt: skip
        for dotted, value in changes.items():
            *path, last = dotted.split(".")
            target = kwargs
            for part in path:
                target = target[part]
            target[last] = value
        return Persistent("Generator", layers={"synthesis": synthesis, "mapping": mapping},
                          kwargs=kwargs, z_dim=Z, c_dim=0, w_dim=W)  # fmt: skip

    def discriminator(self):
        blocks = {}
        resolutions = [2**i for i in range(RES.bit_length() - 1, 2, -1)]  # RES, ..., 8
        for res in resolutions:
            tmp, out = self.channels(res), self.channels(res // 2)
            layers = {"fromrgb": self.conv(3, tmp, 1)} if res == RES else {}
            layers.update(
                conv0=self.conv(tmp, tmp, 3),
                conv1=self.conv(tmp, out, 3, down=2),
                skip=self.conv(tmp, out, 1, bias=False, down=2),
            )
            blocks[f"b{res}"] = Persistent(
                "DiscriminatorBlock",
                buffers={"resample_filter": fir_filter()},
                layers=layers,
                args=(0 if res == RES else tmp, tmp, out),
                kwargs=dict(resolution=res, img_channels=3, first_layer_idx=0),
            )
        c = self.channels(4)
        blocks["b4"] = Persistent(
            "DiscriminatorEpilogue",
            layers={
                "mbstd": Persistent("MinibatchStdLayer", kwargs=dict(group_size=MBSTD, num_channels=1)),
                "conv": self.conv(c + 1, c, 3),
                "fc": self.fc(c * 16, c),
                "out": self.fc(c, 1),
            },
            args=(c,),
            kwargs=dict(cmap_dim=0, resolution=4, img_channels=3, mbstd_group_size=MBSTD),
        )  # fmt: skip
        kwargs = dict(
            c_dim=0, img_resolution=RES, img_channels=3, architecture="resnet", channel_base=BASE,
            channel_max=CMAX, num_fp16_res=0, conv_clamp=256, block_kwargs=EasyDict(),
            mapping_kwargs=EasyDict(), epilogue_kwargs=EasyDict(mbstd_group_size=MBSTD),
        )  # fmt: skip
        return Persistent("Discriminator", layers=blocks, kwargs=kwargs, c_dim=0,
                          img_resolution=RES, block_resolutions=resolutions)  # fmt: skip

    def snapshot(self, augment_pipe=None, **g_changes):
        return dict(
            training_set_kwargs=dict(class_name="training.dataset.ImageFolderDataset",
                                     path="many_shot_dog", use_labels=False, max_size=389,
                                     xflip=False, resolution=RES),
            G=self.generator(**g_changes),
            D=self.discriminator(),
            G_ema=self.generator(**g_changes),
            augment_pipe=augment_pipe,
        )  # fmt: skip


def write(snapshot, path, container="torch.save"):
    """The snapshot as the course's files (torch.save) or NVIDIA's snapshots (pickle.dump) hold it."""
    if container == "torch.save":
        torch.save(snapshot, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(snapshot, f)
    return path


def our_name(network, name):
    """This code's name of one of their tensors (the mapping the issue states)."""
    if network == "D":
        return "epilogue." + name[3:] if name.startswith("b4.") else "blocks." + name
    return name.replace("synthesis.", "synthesis.blocks.", 1).replace(
        "mapping.fc", "mapping.layers."
    )


def tiny_networks():
    g_kwargs, d_kwargs = CONFIGS["tiny"].network_kwargs()
    return {
        "G": Generator(**g_kwargs),
        "D": Discriminator(**d_kwargs),
        "G_ema": Generator(**g_kwargs),
    }


def one_line(message):
    assert "\n" not in message and message.endswith("."), message
    assert "Weights only load failed" not in message and "Traceback" not in message, message
    return message


# ----------------------------------------------------------------------------------------------
# Reading


@pytest.mark.parametrize("container", ["torch.save", "pickle.dump"])
def test_course_file_fills_every_tensor_of_ours_with_exactly_theirs(tmp_path, container):
    snapshot = OriginalNetworks().snapshot()
    path = write(snapshot, tmp_path / "part1-10K.pkl", container)
    state = load_checkpoint(path)

    assert state["format"] == FORMAT and state["iteration"] is None
    config = state["options"]["config"]
    assert config["name"] == "tiny" and config["mbstd_group"] == MBSTD
    architecture = CONFIGS["tiny"].architecture()
    assert {k: config[k] for k in architecture} == architecture
    networks = tiny_networks()
    for key, network in networks.items():
        network.load_state_dict(state[key])  # strict: every tensor of ours is filled
        ours = network.state_dict()
        theirs = tensors_of(snapshot[key])
        constants = [n for n in theirs if n.endswith("resample_filter")]
        assert len(theirs) - len(constants) == len(ours), "every tensor of theirs is used"
        for name, tensor in theirs.items():
            if name not in constants:
                assert torch.equal(ours[our_name(key, name)], tensor), (key, name)
    assert not torch.equal(state["G"]["mapping.w_avg"], state["G_ema"]["mapping.w_avg"])
    # spot checks by attribute, independent of any name mapping
    G, D = networks["G"], networks["D"]
    g_theirs, d_theirs = tensors_of(snapshot["G"]), tensors_of(snapshot["D"])
    assert torch.equal(G.mapping.layers[1].bias, g_theirs["mapping.fc1.bias"])
    assert torch.equal(
        G.synthesis.blocks["b32"].conv0.weight, g_theirs["synthesis.b32.conv0.weight"]
    )
    assert torch.equal(G.synthesis.blocks["b4"].const, g_theirs["synthesis.b4.const"])
    assert torch.equal(D.epilogue.fc.weight, d_theirs["b4.fc.weight"])
    assert torch.equal(D.blocks["b16"].skip.weight, d_theirs["b16.skip.weight"])

    images = G(torch.randn(4, Z))
    assert images.shape == (4, 3, RES, RES) and torch.isfinite(D(images)).all()


def test_the_files_built_here_use_the_globals_of_the_original(tmp_path):
    path = write(OriginalNetworks().snapshot(), tmp_path / "part1-10K.pkl")
    with zipfile.ZipFile(path) as archive:
        data = archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl")))
    names = {arg for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}
    assert {"torch_utils.persistence _reconstruct_persistent_obj", "dnnlib.util EasyDict",
            "__builtin__ set", "_codecs encode", "numpy dtype"} <= names  # fmt: skip
    assert {tuple(n.split(" ")) for n in names} <= set(legacy.GLOBALS)


def test_nvidia_snapshot_with_an_augment_pipe_loads_the_same(tmp_path):
    nets = OriginalNetworks()
    pipe = Persistent("AugmentPipe", buffers={"p": torch.zeros([])}, kwargs=dict(xflip=1.0))
    snapshot = nets.snapshot(augment_pipe=pipe)
    state = load_checkpoint(
        write(snapshot, tmp_path / "network-snapshot-000400.pkl", "pickle.dump")
    )
    assert torch.equal(state["D"]["epilogue.out.bias"], tensors_of(snapshot["D"])["b4.out.bias"])


@pytest.mark.parametrize("numpy_module", ["numpy.core.multiarray", "numpy._core.multiarray"])
def test_numpy_scalars_of_numpy_1_and_2_are_read(numpy_module):
    data = pickle.dumps({"gain": np.float64(0.25)}, protocol=2)
    for written in (b"numpy.core.multiarray", b"numpy._core.multiarray"):
        data = data.replace(written, numpy_module.encode())
    assert legacy.RestrictedUnpickler(io.BytesIO(data)).load() == {"gain": 0.25}


# ----------------------------------------------------------------------------------------------
# Refusals


class Call:
    """Pickles as a call of `function(*args)`."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def test_a_file_that_calls_anything_else_is_refused_and_runs_nothing(tmp_path):
    ran = tmp_path / "ran"
    course = OriginalNetworks().snapshot()  # a course-style zip whose D holds a call of eval
    course["D"].state["epilogue_hook"] = Call(eval, f"open({str(ran)!r}, 'w')")
    cases = [
        ("pickle.dump", {"G": Call(os.system, f"touch {ran}")}, f"{os.system.__module__}.system"),
        ("torch.save", course, "__builtin__.eval"),  # protocol 2 writes builtins as __builtin__
    ]
    for container, content, named in cases:
        path = write(content, tmp_path / f"bad-{container}.pkl", container)
        with pytest.raises(CheckpointError) as error:
            load_checkpoint(path)
        message = one_line(str(error.value))
        assert f"calls {named}" in message and "nothing in it ran" in message, message
        assert "is neither a complete checkpoint written by this code's train.py" in message
        assert not ran.exists()


def test_files_of_neither_kind_get_one_sentence_naming_what_they_are_not(tmp_path):
    course = write(OriginalNetworks().snapshot(), tmp_path / "part1-10K.pkl")
    with zipfile.ZipFile(tmp_path / "checkpoint.zip", "w") as archive:
        archive.write(course, "checkpoint/part1-10K.pkl")  # the handout's zip, not unzipped
    (tmp_path / "random.pkl").write_bytes(np.random.default_rng(0).bytes(4096))
    (tmp_path / "empty.pkl").write_bytes(b"")
    (tmp_path / "cut.pkl").write_bytes(course.read_bytes()[: course.stat().st_size // 2])
    torch.save({"weight": torch.ones(3)}, tmp_path / "tensors.pt")
    cases = {
        "checkpoint.zip": "a zip archive, but not one written by torch.save",
        "random.pkl": "not a complete torch.save or pickle file",
        "empty.pkl": "not a complete torch.save or pickle file",
        "cut.pkl": "not a complete torch.save or pickle file",
        "tensors.pt": "plain torch data without networks G, D and G_ema",
    }
    for name, reason in cases.items():
        with pytest.raises(CheckpointError) as error:
            load_checkpoint(tmp_path / name)
        message = one_line(str(error.value))
        assert "nor a course/NVIDIA StyleGAN2-ADA pickle" in message and reason in message, message


@pytest.mark.parametrize(
    "change,reason",
    [
        (dict(c_dim=10), "its G was built with c_dim=10, where this code's networks have 0"),
        ({"synthesis_kwargs.architecture": "resnet"}, "synthesis_kwargs.architecture='resnet'"),
        ({"synthesis_kwargs.channel_max": 16}, "its G and D differ in channel_max (16 vs 32)"),
        ({"mapping_kwargs.num_layers": 3}, "has nothing for mapping.layers.2.weight"),
    ],
)
def test_networks_this_code_does_not_build_are_refused_in_one_sentence(tmp_path, change, reason):
    path = write(OriginalNetworks().snapshot(**change), tmp_path / "part1-10K.pkl")
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    message = one_line(str(error.value))
    assert "is a StyleGAN2-ADA pickle, but" in message and reason in message, message


def test_tensors_that_do_not_fit_are_refused(tmp_path):
    nets = OriginalNetworks()
    extra, other_filter, wrong_shape = nets.snapshot(), nets.snapshot(), nets.snapshot()
    block = extra["G"].state["_modules"]["synthesis"].state["_modules"]["b8"]
    block.state["_modules"]["skip"] = nets.conv(32, 32, 1, bias=False)  # the 'resnet' G's skip
    epilogue = other_filter["D"].state["_modules"]["b4"].state["_modules"]["conv"]
    epilogue.state["_buffers"]["resample_filter"] = torch.ones(4, 4) / 16
    wrong_shape["D"].state["_modules"]["b4"].state["_modules"]["out"] = nets.fc(32, 2)
    cases = [
        (extra, "its G has synthesis.b8.skip.weight, which this code's networks do not"),
        (other_filter, "resamples with b4.conv.resample_filter other than the FIR filter"),
        (
            wrong_shape,
            "tensor b4.out.weight has shape [2, 32] where this code's epilogue.out.weight",
        ),
    ]
    for snapshot, reason in cases:
        with pytest.raises(CheckpointError) as error:
            load_checkpoint(write(snapshot, tmp_path / "part1-10K.pkl"))
        assert reason in one_line(str(error.value)), str(error.value)


def test_a_course_file_of_another_architecture_than_cfg_is_refused_naming_both(tmp_path):
    state = load_checkpoint(write(OriginalNetworks().snapshot(), tmp_path / "part1-10K.pkl"))
    with pytest.raises(CheckpointError) as error:
        check_architecture(state, CONFIGS["low_shot"].architecture(), "low_shot", "part1-10K.pkl")
    message = one_line(str(error.value))
    assert "was trained with config 'tiny' at 32x32 and does not fit --cfg low_shot" in message
    assert "resolution 32 vs 256, z_dim 32 vs 512" in message and "use --cfg tiny" in message


# ----------------------------------------------------------------------------------------------
# The handout's commands


def convert(*args):
    return subprocess.run(
        [sys.executable, "-m", "training.checkpoint", *map(str, args)], cwd=GAN_DIR, env=env(),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_conversion_command_writes_this_codes_weights_only_format(tmp_path):
    original = write(OriginalNetworks().snapshot(), tmp_path / "part1-10K.pkl", "pickle.dump")
    target = tmp_path / "converted" / "part1-10K.pt"
    result = convert(original, target)
    assert result.returncode == 0, result.stderr
    written = torch.load(target, weights_only=True)
    expected = load_checkpoint(original)
    assert written["format"] == FORMAT and written["options"]["cfg"] == "tiny"
    for key in ("G", "D", "G_ema"):
        assert written[key].keys() == expected[key].keys()
        assert all(torch.equal(written[key][k], expected[key][k]) for k in expected[key])

    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps({"G": Call(os.system, "true")}))
    with pytest.raises(CheckpointError, match="calls"):
        export_weights(bad, tmp_path / "out.pt")
    assert list(tmp_path.glob("*out.pt*")) == [], "no output, not even a half-written one"


@pytest.mark.needs(*TRAINING, R1, CUTOUT)
def test_train_py_starts_a_new_run_from_a_course_file(tmp_path, tiny_data):
    snapshot = OriginalNetworks().snapshot()
    (tmp_path / "checkpoint").mkdir()
    course = write(snapshot, tmp_path / "checkpoint" / "part3-10K.pkl")
    from train import main

    args = tiny_args(tmp_path / "runs", tiny_data, True, True, 1, 1, "--checkpoint_path", course)
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    run = only_run_dir(tmp_path / "runs")
    assert f"initialized G, D and G_ema from {course}" in (run / "log.txt").read_text()
    after = load_checkpoint(run / "checkpoint-000001.pt")
    theirs = tensors_of(snapshot["G"])
    moved = max(
        (after["G"][our_name("G", name)] - tensor).abs().max().item()
        for name, tensor in theirs.items()
        if not name.endswith("resample_filter")
    )
    assert 0 < moved < 0.05, "one Adam step away from the course file's weights"
