"""KID and FID of generated images against real ones, and the feature network they are measured in.

Both compare two sets of features of one detector network (the standard one: TF-Inception's 2048
pool features, as StyleGAN2-ADA's metrics use). With the 389 real dog faces, KID is the
better-behaved measure (unbiased, Bińkowski et al. 2018); FID is the one papers quote.

torchmetrics computes both, but only from images through its own call of the feature network; here
the real images' features are cached on disk, so the two formulas below take features directly.

The detector contract: a TorchScript module called as `detector(images, return_features=True)` with
`images` uint8 [N, 3, H, W] in 0..255 at any size, returning float features [N, D].

The features measured by calc_metrics.py and by train.py --metrics kid (training/snapshot_kid.py)
come from here: those of a folder of images, of a generator's images, and of the dataset, cached
beside it keyed by the detector's hash and the images' names, sizes and times.
"""

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

import click
import numpy as np
import torch
from huggingface_hub import constants
from outputs import atomic_write
from tqdm import tqdm

from training.dataset import IMAGE_SUFFIXES, ImageDataset, native_resolution

# StyleGAN2-ADA's TF-Inception feature network in TorchScript form (HW5_DETECTOR_URL to override).
DETECTOR_URL = os.environ.get(
    "HW5_DETECTOR_URL",
    "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/"
    "inception-2015-12-05.pt",
)
# The file's sha256, when known: a download that differs is refused (HW5_DETECTOR_SHA256 to set).
DETECTOR_SHA256 = os.environ.get("HW5_DETECTOR_SHA256", "")
PREDOWNLOAD = "bash slurm/setup_env.sh models"


class DetectorError(ValueError):
    """A feature network that cannot be used; the message is one sentence for the user."""


# ---------------------------------------------------------------------------------------------
# The two metrics


def kid(real: np.ndarray, fake: np.ndarray, num_subsets=100, max_subset_size=1000, seed=0):
    """Kernel Inception Distance: the unbiased squared MMD (Bińkowski et al. 2018) with the cubic
    polynomial kernel k(x, y) = (x.y / D + 1)^3, averaged over `num_subsets` random subsets of
    m = min(max_subset_size, N_real, N_fake) features of each set:

        MMD^2 = sum_{i != j} [k(x_i, x_j) + k(y_i, y_j)] / (m (m - 1)) - 2 sum_{i,j} k(x_i, y_j) / m^2

    real [N_real, D], fake [N_fake, D]; returns a float (0 on average for the same distribution).
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    dim = real.shape[1]
    m = min(max_subset_size, len(real), len(fake))
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(num_subsets):
        x = real[rng.choice(len(real), m, replace=False)]
        y = fake[rng.choice(len(fake), m, replace=False)]
        k_xx = (x @ x.T / dim + 1) ** 3
        k_yy = (y @ y.T / dim + 1) ** 3
        k_xy = (x @ y.T / dim + 1) ** 3
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        total += within - 2 * k_xy.sum() / m**2
    return float(total / num_subsets)


def fid(real: np.ndarray, fake: np.ndarray) -> float:
    """Fréchet Inception Distance of the Gaussians fitted to the two feature sets:

        FID = |mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))

    Tr((S_r S_g)^(1/2)) is computed as the sum of the square roots of the eigenvalues of the
    symmetric A S_g A with A = S_r^(1/2) (same eigenvalues as S_r S_g), so that only symmetric
    eigendecompositions are needed. real [N_real, D], fake [N_fake, D], N >= 2 each.
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    mu_r, mu_g = real.mean(0), fake.mean(0)
    s_r, s_g = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    values, vectors = np.linalg.eigh(s_r)
    sqrt_s_r = (vectors * np.sqrt(_nonnegative(values))) @ vectors.T
    product = sqrt_s_r @ s_g @ sqrt_s_r
    trace_sqrt = np.sqrt(_nonnegative(np.linalg.eigvalsh((product + product.T) / 2))).sum()
    value = ((mu_r - mu_g) ** 2).sum() + np.trace(s_r) + np.trace(s_g) - 2 * trace_sqrt
    return float(max(value, 0.0))  # >= 0 but for rounding


def _nonnegative(eigenvalues: np.ndarray) -> np.ndarray:
    """Eigenvalues of a positive semi-definite matrix with rounding noise set to 0: with fewer
    samples than dimensions most are 0, and the square roots of their +-1e-16 would add up."""
    tolerance = np.abs(eigenvalues).max(initial=0) * len(eigenvalues) * np.finfo(np.float64).eps
    return np.where(eigenvalues > tolerance, eigenvalues, 0.0)


# ---------------------------------------------------------------------------------------------
# The detector


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_detector_path() -> Path:
    """Where the default detector lives: beside the diffusion models, under HF_HOME."""
    return Path(constants.HF_HOME).expanduser() / "hw5-metrics" / Path(DETECTOR_URL).name


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def fetch_default_detector(progress=True) -> Path:
    """The default detector's file, downloaded once (temporary name, sha256 check, rename)."""
    path = default_detector_path()
    if path.is_file():
        return path
    if _offline():
        raise DetectorError(
            f"the default feature network is not in the cache ({path}) and HF_HUB_OFFLINE is set; "
            f"pre-download it on a machine with internet access (the login node): `{PREDOWNLOAD}`."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()

    def write(file):
        with urllib.request.urlopen(DETECTOR_URL, timeout=60) as response:
            size = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=size, unit="B", unit_scale=True, disable=not progress) as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    file.write(block)
                    digest.update(block)
                    bar.update(len(block))
        if DETECTOR_SHA256 and digest.hexdigest() != DETECTOR_SHA256:
            raise DetectorError(
                f"the file downloaded from {DETECTOR_URL} has sha256 {digest.hexdigest()}, not "
                f"the expected {DETECTOR_SHA256}; nothing was kept, try again later."
            )

    try:
        atomic_write(path, write)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        reason = getattr(error, "reason", None) or error
        raise DetectorError(
            f"cannot download the default feature network from {DETECTOR_URL} ({reason}); "
            f"pre-download it on a machine with internet access (the login node): `{PREDOWNLOAD}`."
        ) from None
    try:
        load_detector(path, "cpu")
    except DetectorError:
        path.unlink(missing_ok=True)
        raise DetectorError(
            f"the file downloaded from {DETECTOR_URL} is not a TorchScript module, so it was not "
            "kept; set HW5_DETECTOR_URL to the address of the TorchScript version of the network."
        ) from None
    return path


def load_detector(path, device) -> torch.jit.ScriptModule:
    """The TorchScript module of `path`, in eval mode on `device`."""
    path = Path(path)
    if not path.is_file():
        raise DetectorError(f"--detector {path} does not exist; give a TorchScript file.")
    try:
        return torch.jit.load(str(path), map_location=device).eval()
    except Exception as error:  # torch.jit raises several kinds for files that are not TorchScript
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise DetectorError(
            f"--detector {path} is not a TorchScript module ({reason.rstrip('.')}); give a file "
            f"written by torch.jit.save, or leave --detector out for the default."
        ) from None


@torch.no_grad()
def features(detector, images: torch.Tensor) -> np.ndarray:
    """detector(images, return_features=True) as float64 [N, D], checked against the contract."""
    try:
        out = detector(images, return_features=True)
    except Exception as error:  # the module's own failure, whatever its kind
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise DetectorError(
            f"the detector failed on uint8 images of shape {list(images.shape)} ({reason[:200]}); "
            "it must accept detector(images, return_features=True)."
        ) from None
    if not (
        isinstance(out, torch.Tensor)
        and out.is_floating_point()
        and out.ndim == 2
        and out.shape[0] == images.shape[0]
    ):
        what = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise DetectorError(
            f"the detector returned {what} for {images.shape[0]} images, not float features "
            "[N, D]; it must return one feature vector per image."
        )
    if not torch.isfinite(out).all():
        raise DetectorError("the detector returned features that are not finite (NaN or inf).")
    return out.double().cpu().numpy()


# ---------------------------------------------------------------------------------------------
# Features of images, of a generator and of the dataset (cached)


def feature_batches(detector, images, batch, device, what):
    """Features of a uint8 [N, 3, R, R] tensor, batch by batch, as float64 [N, D]."""
    chunks = images.split(batch)
    with tqdm(total=len(chunks), desc=what, unit="batch", leave=False) as bar:
        parts = []
        for chunk in chunks:
            parts.append(features(detector, chunk.to(device)))
            bar.update()
    return np.concatenate(parts)


def generated_features(G, detector, num_gen, seed, batch, device):
    """Features of num_gen images of G from latents z ~ N(0, I) drawn with `seed`."""
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


def data_fingerprint(path: Path) -> str:
    """A hash of the images' names, sizes and modification times: a changed dataset gets a new
    feature cache."""
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


def real_features(data: Path, detector, detector_hash, batch, device):
    """The dataset's features, read from the cache beside it or computed and cached there."""
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
