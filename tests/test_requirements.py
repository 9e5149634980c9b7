"""The environment `make` builds: exact ML pins and no CUDA packages on a CPU machine."""

import importlib.metadata
import re
from pathlib import Path

import torch

REQUIREMENTS = (Path(__file__).resolve().parents[1] / "requirements.txt").read_text().splitlines()


def pins() -> dict[str, str]:
    out = {}
    for line in REQUIREMENTS:
        line = line.split("#")[0].strip()
        if line:
            name, spec = re.match(r"([A-Za-z0-9_.\-]+)(.*)", line).groups()
            out[name.lower()] = spec
    return out


def test_exact_pins():
    p = pins()
    assert p["torch"] == "==2.13.0" and p["torchvision"] == "==0.28.0"
    assert re.fullmatch(r"==8\.\d+\.\d+", p["ultralytics"])
    assert p["lap"].startswith(">=0.5.12")
    for runtime in ("openvino", "onnxruntime", "onnx"):  # an export is only as good as the runtime it was made for
        assert re.fullmatch(r"==\d+(\.\d+)+", p[runtime]), runtime
    assert "onnxruntime-gpu" not in p
    assert "opencv-python" in p and "opencv-python-headless" not in p
    for name in ("scikit-learn", "pandas", "matplotlib", "tqdm", "pillow", "pyyaml", "pytest", "pytest-xdist", "ruff"):
        assert name in p, name


def test_no_cuda_packages_beside_cpu_torch():
    if torch.version.cuda is not None:
        return  # a CUDA machine installs the CUDA build on purpose
    names = sorted({d.metadata["Name"].lower() for d in importlib.metadata.distributions()})
    offending = [n for n in names if n.startswith("nvidia") or "cuda" in n or n == "triton"]
    assert offending == [], f"CUDA packages installed beside a CPU torch: {offending}"


def test_headless_opencv_not_installed():
    names = {d.metadata["Name"].lower() for d in importlib.metadata.distributions()}
    assert "opencv-python-headless" not in names
