"""Inference backends: the detector, the pose model, MobileNetV2 and I3D on PyTorch, OpenVINO or ONNX Runtime.

On a CPU, runtimes made for inference run the same networks markedly faster than eager PyTorch
(measured: README, Speed). Every network is exported once, from the weights the project resolved,
into ``models/exported/<name>-<kind>-<backend>-<key>/``, where the key covers the weights' sha256, the
input size, the precision and the versions of the runtime, torch and Ultralytics (the exporters). An
export is built in a staging folder and renamed into place with a manifest of its files' sha256; one
whose files no longer match is rebuilt, never trusted. An export that fails falls back to PyTorch with
one warning line.

YOLO models are exported by Ultralytics itself (dynamic shapes, so frames keep the rectangular
letterbox PyTorch uses) and run through Ultralytics' own ``YOLO`` class, so tracking, boxes and
keypoints come out as with the ``.pt`` file. MobileNetV2 (normalization, trunk and pooling: what
``BehaviorNet.embed`` computes) and I3D (``Mixed_5c`` averaged: what ``VideoBackbone.embed`` computes) are
converted by the runtime's own converter.

Example:
    >>> backend = resolve_backend("auto", "cpu")                      # doctest: +SKIP
    'openvino'
    >>> model = load_yolo_backend("yolov8n.pt", "detect", 640, backend)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import shutil
import warnings
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from behavior.errors import InputError, first_line
from behavior.io import files
from behavior.io.files import file_sha256
from behavior.io.weights import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    MODELS_DIR,
    load_yolo,
    resolve_weights,
    verify_checkpoint,
)
from behavior.runtime import hardware

log = logging.getLogger(__name__)

EXPORT_VERSION = 1
EXPORTS_DIR = MODELS_DIR / "exported"
EXPORTS_ENV = "BEHAVIOR_EXPORTS_DIR"  # where exports are cached, when not models/exported
RUNTIME_PACKAGES = {"openvino": "openvino", "onnxruntime": "onnxruntime"}
MANIFEST = "export.json"


def exports_dir() -> Path:
    """The folder of cached exports: ``$BEHAVIOR_EXPORTS_DIR`` or ``models/exported``."""
    return Path(os.environ.get(EXPORTS_ENV) or EXPORTS_DIR)


def available(backend: str) -> bool:
    """True when ``backend``'s runtime can be imported here (torch always can)."""
    return backend == "torch" or importlib.util.find_spec(RUNTIME_PACKAGES[backend]) is not None


def runtime_version(backend: str) -> str:
    """The installed version of ``backend``'s runtime package (torch's for torch)."""
    try:
        return importlib.metadata.version(RUNTIME_PACKAGES.get(backend, "torch"))
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def resolve_backend(choice: str, device: str) -> str:
    """INFERENCE_BACKEND as it will run on ``device``: "auto" is OpenVINO on the CPU and torch on a GPU.

    An explicit runtime that is not installed falls back to torch with a warning, so a run never
    fails for want of an optional speed-up.

    Example:
        >>> resolve_backend("auto", "cuda:0")
        'torch'
    """
    if choice == "torch" or (choice == "auto" and device != "cpu"):
        return "torch"
    if choice == "auto":
        return next((b for b in ("openvino", "onnxruntime") if available(b)), "torch")
    if not available(choice):
        log.warning("INFERENCE_BACKEND %s: the %s package is not installed; running on torch", choice,
                    RUNTIME_PACKAGES[choice])
        return "torch"
    return choice


@dataclass(frozen=True)
class ExportSpec:
    """Everything that decides an exported model's contents."""

    name: str  # "yolov8n", "mobilenet_v2"
    kind: str  # "detect", "pose", "backbone"
    source_sha256: str  # of the weights it is made from
    imgsz: tuple[int, ...]  # (size,) for YOLO, (height, width) for the backbone
    backend: str
    precision: str = "float32"

    def folder(self, root: Path) -> Path:
        """Where this export lives under ``root``: a readable name and a key of every field."""
        text = "|".join(map(str, (EXPORT_VERSION, *asdict(self).values(), runtime_version(self.backend),
                                  torch.__version__, importlib.metadata.version("ultralytics"))))
        key = hashlib.sha256(text.encode()).hexdigest()[:16]
        return Path(root) / f"{self.name}-{self.kind}-{self.backend}-{key}"


def _file_hashes(folder: Path) -> dict[str, str]:
    """Every file's sha256, read now (not ``file_sha256``'s cache: a file changed on disk must be noticed)."""
    return {p.relative_to(folder).as_posix(): file_sha256.__wrapped__(str(p)) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != MANIFEST}


def verified_export(folder: Path) -> Path | None:
    """The model file of the export in ``folder`` when its manifest matches every file; None otherwise."""
    manifest = files.read_json(Path(folder) / MANIFEST)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return None
    if _file_hashes(Path(folder)) != manifest["files"] or manifest.get("model") not in manifest["files"]:
        return None
    return Path(folder) / manifest["model"]


def cached_export(spec: ExportSpec, build: Callable[[Path], Path], root: Path | None = None) -> Path:
    """The model file of ``spec``'s export, made by ``build(staging folder)`` the first time it is asked for.

    ``build`` writes the export into the empty folder it is given and returns its model file; the
    folder gets a manifest and is renamed into place, so an interrupted export leaves nothing behind.
    """
    folder = spec.folder(root or exports_dir())
    model = verified_export(folder)
    if model is not None:
        return model
    if folder.exists():
        log.warning("export %s does not match its manifest: rebuilding it", folder)
    staging = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        model = Path(build(staging)).resolve()
        rel = model.relative_to(staging.resolve()).as_posix()
        files.write_json(staging / MANIFEST, {"spec": asdict(spec), "runtime": runtime_version(spec.backend),
                                              "model": rel, "files": _file_hashes(staging)})
        files.replace_dir(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("exported %s %s for %s into %s", spec.name, spec.kind, spec.backend, folder)
    return folder / rel


# --- YOLO models (detector, pose) ---------------------------------------------------------------------------------

ULTRALYTICS_FORMATS = {"openvino": "openvino", "onnxruntime": "onnx"}


def export_yolo(weights: Path, task: str, imgsz: int, backend: str, root: Path | None = None,
                what: str = "model") -> Path:
    """The model file of Ultralytics' own export of ``weights`` for ``backend`` (dynamic shapes, float32)."""
    weights = Path(weights)
    spec = ExportSpec(weights.stem, task, file_sha256(str(weights)), (int(imgsz),), backend)

    def build(staging: Path) -> Path:
        verify_checkpoint(weights, what)  # an unsafe file is refused under its own name, before any copy
        copy = staging / weights.name  # Ultralytics writes the export beside its source
        shutil.copyfile(weights, copy)
        model = load_yolo(copy, task=task, what=what)
        out = Path(model.export(format=ULTRALYTICS_FORMATS[backend], imgsz=int(imgsz), dynamic=True, half=False,
                                simplify=False, opset=17, device="cpu", verbose=False))
        copy.unlink()
        return next(out.glob("*.xml")) if out.is_dir() else out

    return cached_export(spec, build, root)


def load_yolo_backend(spec: str | os.PathLike, task: str, imgsz: int, backend: str, what: str,
                      precision: str = "float32", throughput: bool = False) -> tuple[Any, str]:
    """An Ultralytics model of resolved weights on ``backend``, and the backend it really runs on.

    An export is made from the ``.pt`` file only after ``weights.load_yolo`` checked it, and a bad file is
    the same one-line InputError on every backend. Any other failure of the export or the runtime leaves
    the model on PyTorch, with one warning. ``throughput``: OpenVINO runs the images of one call side by
    side, one core each (stage 1's batches), rather than each image on every core (prediction).
    """
    if backend != "torch":
        try:
            from ultralytics import YOLO

            exported = export_yolo(resolve_weights(spec), task, imgsz, backend, what=what)
            # Ultralytics knows an OpenVINO model by its folder; a first run proves the runtime works here
            fast = YOLO(str(exported.parent if exported.suffix == ".xml" else exported), task=task)
            fast.predict(np.zeros((imgsz, imgsz, 3), np.uint8), imgsz=imgsz, device="cpu", verbose=False)
            if backend == "openvino":
                _compile_openvino(fast.predictor.model, exported, precision, throughput)
            return fast, backend
        except InputError:
            raise  # missing, unsafe or corrupt weights: no backend can run them
        except Exception as exc:  # any export or runtime failure: PyTorch still works
            log.warning("%s on %s failed (%s); running it on torch", what, backend, first_line(exc))
    return load_yolo(spec, task=task, what=what), "torch"


OPENVINO_PRECISIONS = {"float32": "f32", "bfloat16": "bf16"}


def openvino_config(precision: str, throughput: bool = False) -> dict[str, str]:
    """OpenVINO CPU settings: the precision said out loud (it picks bfloat16 by itself on CPUs with AVX-512)."""
    return {"PERFORMANCE_HINT": "THROUGHPUT" if throughput else "LATENCY",
            "INFERENCE_PRECISION_HINT": OPENVINO_PRECISIONS[hardware.cpu_precision(precision)]}


def _compile_openvino(autobackend: Any, model_file: Path, precision: str, throughput: bool) -> None:
    """Recompile the OpenVINO model Ultralytics loaded with our precision and mode (it sets neither)."""
    import openvino as ov

    if not hasattr(autobackend, "ov_compiled_model"):
        raise RuntimeError("this Ultralytics version keeps no OpenVINO model to configure")
    compiled = ov.Core().compile_model(str(model_file), "CPU", openvino_config(precision, throughput))
    autobackend.ov_compiled_model = SideBySide(compiled) if throughput else compiled
    autobackend.inference_mode = "LATENCY"  # Ultralytics calls the model on the whole batch: ours splits it


class SideBySide:
    """A compiled OpenVINO model (THROUGHPUT hint) that runs the images of a batch side by side, one infer request
    each, called as Ultralytics calls a model: ``model(batch).values()`` are its outputs, batched.

    Ultralytics' own THROUGHPUT path makes an ``AsyncInferQueue`` with a Python callback on every call; freed by the
    garbage collector, such a queue can hang the process (its threads wait for the GIL the collector holds). These
    requests are made once, with no callback.

    Example:
        >>> compiled = core.compile_model(xml, "CPU", {"PERFORMANCE_HINT": "THROUGHPUT"})  # doctest: +SKIP
        >>> boxes, = SideBySide(compiled)(batch).values()  # doctest: +SKIP
    """

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        count = max(int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")), 1)
        self.requests = [compiled.create_infer_request() for _ in range(count)]

    def __call__(self, batch: np.ndarray) -> dict[int, np.ndarray]:
        outputs = []
        for start in range(0, len(batch), len(self.requests)):
            chunk = batch[start: start + len(self.requests)]
            for request, image in zip(self.requests, chunk, strict=False):
                request.start_async({0: image[None]})
            for request in self.requests[: len(chunk)]:
                request.wait()
                outputs.append([tensor.data.copy() for tensor in request.output_tensors])  # reused next chunk
        return {k: np.concatenate(parts) for k, parts in enumerate(zip(*outputs, strict=True))}


# --- MobileNetV2 ---------------------------------------------------------------------------------------------------

class _Embedder(torch.nn.Module):
    """``BehaviorNet.embed`` as a module of its own: the graph a runtime converts."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.embed(x)


def backbone_sha256(net: Any) -> str:
    """A digest of the backbone's weights and the normalization: what decides its features."""
    digest = hashlib.sha256()
    for name, tensor in net.backbone.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digest.update(repr((IMAGENET_MEAN, IMAGENET_STD)).encode())
    return digest.hexdigest()


def export_backbone(net: Any, backend: str, root: Path | None = None) -> Path:
    """The model file of ``net``'s MobileNetV2 (crops in [0, 1] -> 1280 features) converted for ``backend``."""
    size = (net.cfg.frame_height, net.cfg.frame_width)
    spec = ExportSpec("mobilenet_v2", "backbone", backbone_sha256(net), size, backend)
    return export_module(_Embedder(net), (3, *size), spec, root)


class _ClipFeatures(torch.nn.Module):
    """I3D's ``Mixed_5c`` averaged over time and space: what ``VideoBackbone.embed`` computes from a clip."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x).mean(dim=(2, 3, 4))


def export_i3d(net: torch.nn.Module, sha256: str, clip_length: int, size: int, backend: str,
               root: Path | None = None) -> Path:
    """The model file of I3D's clip features ((N, 3, L, size, size) in [-1, 1] -> (N, 1024)) for ``backend``."""
    spec = ExportSpec("i3d", "features", sha256, (clip_length, size, size), backend)
    return export_module(_ClipFeatures(net), (3, clip_length, size, size), spec, root)


def export_module(module: torch.nn.Module, shape: tuple[int, ...], spec: ExportSpec, root: Path | None = None) -> Path:
    """The model file of ``module`` (one input, batched along its first axis, of items ``shape``) for a hardware."""
    module = module.eval().cpu()
    example = torch.zeros(1, *shape)

    def build(staging: Path) -> Path:
        if spec.backend == "openvino":
            import openvino as ov

            with torch.inference_mode(), warnings.catch_warnings():  # tracing notes shapes fixed: they are
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                converted = ov.convert_model(module, example_input=example, input=[(-1, *shape)])
            path = staging / f"{spec.name}.xml"
            ov.save_model(converted, str(path), compress_to_fp16=False)
            return path
        path = staging / f"{spec.name}.onnx"
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(module, (example,), str(path), input_names=["x"], output_names=["features"],
                              dynamic_axes={"x": {0: "n"}, "features": {0: "n"}}, opset_version=17, dynamo=False)
        return path

    return cached_export(spec, build, root)


class CompiledNetwork:
    """A network exported by ``export_module`` on OpenVINO or ONNX Runtime: float32 arrays in, features out.

    ONNX Runtime computes in float32 whatever ``precision`` says (it has no bfloat16 kernels on the CPU).
    """

    def __init__(self, model_file: Path, backend: str, precision: str = "float32") -> None:
        self.backend = backend
        if backend == "openvino":  # OpenVINO would pick bfloat16 by itself where the CPU has it: say which
            import openvino as ov

            self._model = ov.Core().compile_model(str(model_file), "CPU", openvino_config(precision))
        else:
            import onnxruntime as ort

            self._model = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
            self._input = self._model.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.backend == "openvino":
            return np.asarray(self._model(x)[0])
        return self._model.run(None, {self._input: x})[0]


def compile_network(name: str, backend: str, export: Callable[[], Path], precision: str) -> CompiledNetwork | None:
    """``export()``'s model compiled for ``backend``; None, with one warning, when the runtime is missing or fails.

    A run never fails for want of a speed-up: the caller computes on torch instead.
    """
    try:
        if not available(backend):
            raise RuntimeError(f"the {RUNTIME_PACKAGES[backend]} package is not installed")
        return CompiledNetwork(export(), backend, precision)
    except Exception as exc:
        log.warning("%s on %s failed (%s); computing features on torch", name, backend, first_line(exc))
        return None


_compiled: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled_backbone(net: Any) -> CompiledNetwork | None:
    """``net``'s backbone on the runtime its ``cfg.cnn_backend`` names, built once per network; None for torch.

    A runtime that is missing or fails leaves the network on torch, with one warning.
    """
    backend = getattr(net.cfg, "cnn_backend", "torch")
    if backend == "torch" or net.backbone is None:
        return None
    if net not in _compiled:
        _compiled[net] = compile_network("MobileNetV2", backend, lambda: export_backbone(net, backend),
                                         net.cfg.cpu_precision)
    return _compiled[net]
