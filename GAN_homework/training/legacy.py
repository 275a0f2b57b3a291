"""The course's checkpoints and NVIDIA's StyleGAN2-ADA snapshots, read without running the file.

The handout's `checkpoint/partN-10K.pkl` were written by the original course code, NVIDIA's
stylegan2-ada-pytorch. Such a file holds a dict: `training_set_kwargs` (a plain dict), `G`, `D`,
`G_ema` (whole networks) and `augment_pipe` (None in the course's files). Two containers:
- the course's files: a `torch.save` zip (the pickle in <name>/data.pkl, each tensor's storage in
  <name>/data/<key>);
- NVIDIA's `network-snapshot-*.pkl`: plain `pickle.dump`, each storage inside the pickle as
  `torch.storage._load_from_bytes(<a small torch.save file of that storage>)`.

Every network and layer there is an instance of a "persistent class", pickled as the call
`torch_utils.persistence._reconstruct_persistent_obj(meta)` with
meta = {type: 'class', version, module_src, class_name, state}. Ordinary unpickling executes
`module_src` (the whole source of their networks.py) to rebuild the class. `state` is the module's
`__dict__`: `_parameters`, `_buffers`, `_modules` (its layers: persistent objects again) and
`_init_kwargs`, the constructor's arguments (a `dnnlib.util.EasyDict`).

Here a restricted unpickler resolves only the globals such files use, each to a stand-in of ours:
the persistent-object constructor becomes `PersistentObject`, which keeps `class_name` and `state`
and never looks at `module_src`. Any other global stops the reading before anything is called.

The networks are this code's (training/networks.py) under other names. Learning-rate multipliers
and weight gains are applied at run time on both sides, so every tensor is copied as it is:

    theirs                              ours
    G  mapping.fcN.*                    mapping.layers.N.*
       synthesis.bR.*                   synthesis.blocks.bR.*
    D  bR.*  (R > 4)                    blocks.bR.*
       b4.*  (the 4x4 epilogue)         epilogue.*
    every resample_filter buffer        the constant FIR filter [1, 3, 3, 1] (not stored)

The constructor arguments in the file decide the architecture (`architecture_of`); the tensors must
then fill this code's networks of that architecture exactly (`convert`).
"""

import io
import pickle
import re
import zipfile
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from training.config import CONFIGS, TrainConfig
from training.networks import Discriminator, Generator
from training.ops import fir_filter

NETWORKS = {"G": "Generator", "D": "Discriminator", "G_ema": "Generator"}


class NotStyleGAN2ADA(ValueError):
    """The file is not a course/NVIDIA StyleGAN2-ADA pickle; the message is a clause saying why."""


class UnsupportedNetworks(ValueError):
    """A StyleGAN2-ADA pickle whose networks this code does not build; the message is a clause."""


class PersistentObject:
    """Stand-in for one of their networks or layers: its class name and its state (`__dict__`)."""

    __slots__ = ("class_name", "state")

    def __init__(self, class_name: str, state: dict):
        self.class_name, self.state = class_name, state

    def tensors(self, prefix: str = "") -> dict:
        """Parameters and buffers of this module and of its layers, under dotted names."""
        found = {}
        for group in ("_parameters", "_buffers"):
            for name, tensor in (self.state.get(group) or {}).items():
                if tensor is None:  # e.g. the bias of a layer built with bias=False
                    continue
                if not isinstance(tensor, torch.Tensor):
                    raise NotStyleGAN2ADA(f"its {prefix}{name} is not a tensor")
                found[prefix + name] = tensor
        for name, layer in (self.state.get("_modules") or {}).items():
            if layer is None:
                continue
            if not isinstance(layer, PersistentObject):
                raise NotStyleGAN2ADA(f"its layer {prefix}{name} is not one of their networks")
            found.update(layer.tensors(f"{prefix}{name}."))
        return found


# ----------------------------------------------------------------------------------------------
# The stand-ins, one per global that such files use


def _persistent_object(meta):
    if not (
        isinstance(meta, dict)
        and meta.get("type") == "class"
        and isinstance(meta.get("class_name"), str)
        and isinstance(meta.get("state"), dict)
    ):
        raise NotStyleGAN2ADA("it holds a persistent object of an unknown kind")
    return PersistentObject(meta["class_name"], meta["state"])


class _EasyDict(dict):
    """dnnlib.util.EasyDict (a dict with attribute access); a plain dict is all we read of it."""


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    if not isinstance(storage, torch.Tensor):
        raise NotStyleGAN2ADA("it builds a tensor from something other than stored data")
    return storage.as_strided(size, stride, offset)  # refuses a view past the storage's end


def _rebuild_parameter(data, requires_grad, hooks):
    return data


def _storage_from_bytes(data):
    """A storage pickled as a torch.save file of its own (plain-pickle snapshots)."""
    if not isinstance(data, bytes):
        raise NotStyleGAN2ADA("it holds a storage that is not bytes")
    storage = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(storage, torch.TypedStorage):
        raise NotStyleGAN2ADA("it holds a storage that is not a torch storage")
    return torch.empty(0, dtype=storage.dtype).set_(storage)


def _encode(text, encoding):
    """Protocol-2 pickles write bytes as _codecs.encode(text, 'latin1')."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise NotStyleGAN2ADA("it encodes bytes in an unexpected way")
    return text.encode("latin-1")


def _numeric_dtype(dtype) -> np.dtype:
    if not isinstance(dtype, (str, np.dtype)) or np.dtype(dtype).kind not in "biuf":
        raise NotStyleGAN2ADA("it holds a numpy value that is not a number")
    return np.dtype(dtype)


def _numpy_dtype(name, align=False, copy=True):
    # always a copy: the pickle then sets the copy's state, never that of numpy's own float64
    return np.dtype(_numeric_dtype(name), align, True)


def _numpy_scalar(dtype, data):
    """numpy scalars (the layers' float64 gains): numpy.core.multiarray.scalar(dtype, bytes)."""
    if not isinstance(data, bytes):
        raise NotStyleGAN2ADA("it holds a numpy value that is not stored as bytes")
    return np.frombuffer(data, dtype=_numeric_dtype(dtype), count=1)[0]


GLOBALS = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent_object,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("torch", "FloatStorage"): torch.float32,  # names a storage's type in torch.save files
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("__builtin__", "set"): set,
    ("_codecs", "encode"): _encode,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,  # as numpy 1 writes it
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,  # as numpy 2 writes it
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves exactly the names in GLOBALS, to our stand-ins.

    `read_storage(pid)` answers the persistent ids of a torch.save zip (None: a plain pickle)."""

    def __init__(self, file, read_storage=None):
        super().__init__(file)
        self.read_storage = read_storage

    def find_class(self, module, name):
        try:
            return GLOBALS[(module, name)]
        except KeyError:
            raise NotStyleGAN2ADA(
                f"its pickle calls {module}.{name}, which such files never do, so nothing in it ran"
            ) from None

    def persistent_load(self, pid):
        if self.read_storage is None:
            raise NotStyleGAN2ADA("its pickle refers to data outside itself")
        return self.read_storage(pid)


# ----------------------------------------------------------------------------------------------
# Reading the two containers


def _load_torch_zip(archive: zipfile.ZipFile):
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise NotStyleGAN2ADA("it is a zip archive, but not one written by torch.save")
    prefix = pickles[0][: -len("data.pkl")]
    if (
        f"{prefix}byteorder" in archive.namelist()
        and archive.read(f"{prefix}byteorder") != b"little"
    ):
        raise NotStyleGAN2ADA("it was written on a big-endian machine")
    storages = {}

    def read_storage(pid):
        if not (
            isinstance(pid, tuple)
            and len(pid) >= 5
            and pid[0] == "storage"
            and isinstance(pid[1], torch.dtype)
            and isinstance(pid[2], str)
        ):
            raise NotStyleGAN2ADA("its pickle refers to stored data of an unknown kind")
        dtype, key = pid[1], pid[2]
        if key not in storages:
            name = f"{prefix}data/{key}"
            data = bytearray(archive.getinfo(name).file_size)
            with archive.open(name) as f:
                if f.readinto(data) != len(data):
                    raise NotStyleGAN2ADA("it is a torch.save file with a damaged tensor")
            storages[key] = (
                torch.frombuffer(data, dtype=dtype) if data else torch.empty(0, dtype=dtype)
            )
        return storages[key]

    with archive.open(pickles[0]) as f:
        return RestrictedUnpickler(f, read_storage).load()


def read(path) -> dict:
    """The dict a course/NVIDIA file holds, with PersistentObject for each network and layer."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                snapshot = _load_torch_zip(archive)
        else:
            with open(path, "rb") as f:
                snapshot = RestrictedUnpickler(f).load()
    except NotStyleGAN2ADA:
        raise
    except Exception:  # garbage makes an unpickler fail in many ways; the reason is the same
        raise NotStyleGAN2ADA("it is not a complete torch.save or pickle file") from None
    if not isinstance(snapshot, dict) or not all(
        isinstance(snapshot.get(key), PersistentObject) for key in NETWORKS
    ):
        raise NotStyleGAN2ADA("it holds no networks G, D and G_ema")
    return snapshot


# ----------------------------------------------------------------------------------------------
# Architecture: their constructor arguments, and the arguments this code's networks fix

# Arguments of theirs that this code's networks have fixed: (network, argument, the value here).
# An argument not in the file has their default, which is this value.
FIXED = [
    ("G", "c_dim", 0),
    ("G", "img_channels", 3),
    ("G", "mapping_kwargs.lr_multiplier", 0.01),
    ("G", "mapping_kwargs.activation", "lrelu"),
    ("G", "synthesis_kwargs.architecture", "skip"),
    ("G", "synthesis_kwargs.activation", "lrelu"),
    ("D", "c_dim", 0),
    ("D", "img_channels", 3),
    ("D", "architecture", "resnet"),
    ("D", "block_kwargs.activation", "lrelu"),
    ("D", "epilogue_kwargs.activation", "lrelu"),
    ("D", "epilogue_kwargs.mbstd_num_channels", 1),
]


def _arguments(network: PersistentObject, key: str) -> dict:
    expected = NETWORKS[key]
    if network.class_name != expected:
        raise UnsupportedNetworks(f"its {key} is a {network.class_name}, not a {expected}")
    kwargs = network.state.get("_init_kwargs")
    if not isinstance(kwargs, dict):
        raise UnsupportedNetworks(f"its {key} holds no constructor arguments (_init_kwargs)")
    return kwargs


def _argument(arguments: dict, dotted: str, default):
    value = arguments
    for part in dotted.split("."):
        value = value.get(part, default) if isinstance(value, dict) else default
    return value


def architecture_of(snapshot: dict) -> TrainConfig:
    """This code's configuration of the networks in the file, from their constructor arguments:
    the config whose architecture it is (e.g. low_shot), or one named 'stylegan2-ada'."""
    found = {"G": _arguments(snapshot["G"], "G"), "D": _arguments(snapshot["D"], "D")}
    for key, dotted, ours in FIXED:
        theirs = _argument(found[key], dotted, ours)
        if theirs != ours:
            raise UnsupportedNetworks(
                f"its {key} was built with {dotted}={theirs!r}, where this code's networks "
                f"have {ours!r}"
            )
    g, d = found["G"], found["D"]
    for name in ("z_dim", "w_dim", "img_resolution"):
        if name not in g:
            raise UnsupportedNetworks(f"its G was saved without the argument {name}")
    fields = dict(
        resolution=g["img_resolution"],
        z_dim=g["z_dim"],
        w_dim=g["w_dim"],
        mapping_layers=_argument(g, "mapping_kwargs.num_layers", 8),
        channel_base=_argument(g, "synthesis_kwargs.channel_base", 32768),
        channel_max=_argument(g, "synthesis_kwargs.channel_max", 512),
        mbstd_group=_argument(d, "epilogue_kwargs.mbstd_group_size", 4),
        num_fp16_res=_argument(g, "synthesis_kwargs.num_fp16_res", 0),
        conv_clamp=_argument(g, "synthesis_kwargs.conv_clamp", None),
    )
    for name, theirs in (
        ("resolution", d.get("img_resolution")),
        ("channel_base", d.get("channel_base", 32768)),
        ("channel_max", d.get("channel_max", 512)),
    ):
        if theirs != fields[name]:
            raise UnsupportedNetworks(
                f"its G and D differ in {name} ({fields[name]} vs {theirs}), which this code's "
                "networks share"
            )
    config = TrainConfig(name="stylegan2-ada", **fields)
    for name, known in CONFIGS.items():
        if known.architecture() == config.architecture():
            return replace(config, name=name)
    return config


# ----------------------------------------------------------------------------------------------
# Tensors: their names to ours

RENAMES = {
    "Generator": [
        (re.compile(r"^mapping\.fc(\d+)\."), r"mapping.layers.\1."),
        (re.compile(r"^synthesis\.b(\d+)\."), r"synthesis.blocks.b\1."),
    ],
    "Discriminator": [
        (re.compile(r"^b4\."), "epilogue."),
        (re.compile(r"^b(\d+)\."), r"blocks.b\1."),
    ],
}


def _our_name(name: str, renames) -> str:
    for pattern, replacement in renames:
        if pattern.match(name):
            return pattern.sub(replacement, name, count=1)
    return name


def _is_fir_filter(tensor: torch.Tensor) -> bool:
    return tuple(tensor.shape) == (4, 4) and torch.allclose(tensor.float(), fir_filter())


def _state_dict(network: PersistentObject, key: str, ours: dict) -> dict:
    """`network`'s tensors under this code's names; `ours`: this code's names, shapes and dtypes."""
    if network.class_name != NETWORKS[key]:
        raise UnsupportedNetworks(f"its {key} is a {network.class_name}, not a {NETWORKS[key]}")
    state = {}
    for name, tensor in network.tensors().items():
        if name.endswith("resample_filter"):
            if not _is_fir_filter(tensor):
                raise UnsupportedNetworks(
                    f"its {key} resamples with {name} other than the FIR filter [1, 3, 3, 1]"
                )
            continue
        our_name = _our_name(name, RENAMES[network.class_name])
        if our_name not in ours:
            raise UnsupportedNetworks(f"its {key} has {name}, which this code's networks do not")
        if tuple(tensor.shape) != tuple(ours[our_name].shape):
            raise UnsupportedNetworks(
                f"its {key} tensor {name} has shape {list(tensor.shape)} where this code's "
                f"{our_name} has {list(ours[our_name].shape)}"
            )
        state[our_name] = tensor.to(ours[our_name].dtype).contiguous()
    missing = [name for name in ours if name not in state]
    if missing:
        raise UnsupportedNetworks(
            f"its {key} has nothing for {missing[0]} of this code's networks "
            f"({len(missing)} tensors missing)"
        )
    return state


def convert(snapshot: dict) -> tuple[TrainConfig, dict]:
    """(config, {"G", "D", "G_ema": state_dicts that this code's networks of that config load
    strictly}). Every tensor of the file is used, apart from the constant resampling filters."""
    config = architecture_of(snapshot)
    g_kwargs, d_kwargs = config.network_kwargs()
    try:
        # Only names, shapes and dtypes are used. (On the meta device the first construction in a
        # process takes seconds longer; fork_rng leaves the caller's random numbers as they were.)
        with torch.random.fork_rng(devices=[]):
            networks = {
                "Generator": Generator(**g_kwargs),
                "Discriminator": Discriminator(**d_kwargs),
            }
    except (TypeError, ValueError):
        raise UnsupportedNetworks(
            f"its networks' arguments {config.architecture()} describe no network this code builds"
        ) from None
    ours = {class_name: network.state_dict() for class_name, network in networks.items()}
    weights = {key: _state_dict(snapshot[key], key, ours[NETWORKS[key]]) for key in NETWORKS}
    return config, weights


def load(path) -> tuple[TrainConfig, dict]:
    """`convert(read(path))`: a course/NVIDIA file as a config and this code's G, D, G_ema."""
    return convert(read(Path(path)))
