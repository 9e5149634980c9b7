"""MobileNetV2 per-frame features + a bidirectional LSTM over time: the behavior classifier.

``BehaviorNet`` has two entry points. ``embed(frames)`` turns crops into 1280 features per frame
(the expensive part, cached on disk when the backbone is frozen); ``forward(features, vectors)``
classifies a sequence. Training on cached features and predicting from live crops therefore run
the very same head. The network reads the streams of ``ModelConfig.inputs`` (``behavior.features.streams``):
each is embedded on its own (appearance: layer norm and dropout; the vector streams: a
batch norm (``STREAM_NORM``), a linear layer and ReLU), and the embeddings are concatenated per frame
before the BiLSTM. Without "appearance" there is no CNN at all. The streams-to-logits part is a
``SequenceClassifier``; ``BehaviorNet`` holds ``ENSEMBLE_SIZE`` of them, fed the same features, and
averages their log-probabilities (``combine_members``).

Example:
    >>> cfg = ModelConfig(num_classes=3, sequence_length=16, inputs=("appearance", "motion"))
    >>> net = BehaviorNet(cfg, backbone=None)
    >>> net(torch.zeros(2, 16, FEATURE_DIM), torch.zeros(2, 16, MOTION_DIM)).shape
    torch.Size([2, 3])
    >>> pose_only = BehaviorNet(ModelConfig(num_classes=3, inputs=("pose",)), backbone=None)
    >>> pose_only(None, torch.zeros(2, 16, POSE_DIM)).shape
    torch.Size([2, 3])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from behavior import settings
from behavior.errors import InputError, first_line
from behavior.features.streams import KEYPOINT_STREAMS, MOTION_DIM, POSE_DIM, stream_dims, vector_dim
from behavior.io.weights import IMAGENET_MEAN, IMAGENET_STD
from behavior.model.i3d import FEATURE_DIM as VIDEO_FEATURE_DIM
from behavior.settings import (
    BACKBONE_BLOCKS,
    FLAG,
    FRACTION,
    SCENE_STREAMS,
    ModelSettings,
    Rule,
    constants_of,
    internal,
    recorded,
    uses,
)

FEATURE_DIM = 1280  # MobileNetV2's last feature map, average-pooled
EMBED_DIMS = {"motion": 32, "pose": 128, "interaction": 32, "reach": 16, "reached": 16,
              "objects": 16}  # per vector stream
LEGACY_DEFAULTS = {"pose_imgsz": 224, "pose_sha256": "",  # fields checkpoints made before the pose stream lack
                   "mil_pooling": "none", "background_class": "",  # and before multiple-instance training
                   "actor_classes": [],  # and before per-person labels from the clip's geometry
                   "object_classes": [],  # and before the objects stream
                   "cnn_backend": "torch",  # and before the inference backends
                   "stream_norm": False,  # and before the streams were normalized
                   "ensemble_size": 1,  # and before the ensemble
                   "video_clip_length": 16, "video_size": 224, "video_sha256": ""}  # and before I3D
__all__ = ["FEATURE_DIM", "MOTION_DIM", "POSE_DIM", "BehaviorNet", "ModelConfig", "load_backbone"]
BACKBONES = ("mobilenet_v2",)
CNN_BACKENDS = ("torch", "openvino", "onnxruntime")  # INFERENCE_BACKEND resolved (behavior.runtime.backends)

# The per-frame features, in the order they are concatenated: (INPUTS name, length). MobileNetV2's, then I3D's.
FEATURE_STREAMS = (("appearance", FEATURE_DIM), ("scene_video", VIDEO_FEATURE_DIM))
# each feature stream's layer norm, by attribute name: checkpoints keep their "members.0.feature_norm.weight" keys
NORM_NAMES = {"appearance": "feature_norm", "scene_video": "scene_video_norm"}
# Options that earlier versions had and this one removed (docs/EXPERIMENTS.md): model_config field -> the one value
# today's network still is. A checkpoint trained with another value is refused with one line naming it.
REMOVED_OPTIONS = {"temporal_pooling": "last", "normalize_mean": list(IMAGENET_MEAN),
                   "normalize_std": list(IMAGENET_STD)}


@dataclass(frozen=True)
class ModelConfig(ModelSettings):
    """Everything needed to rebuild the network and to feed it at prediction time: the model settings of stage 3
    (``settings.ModelSettings``), and how its data were made."""

    num_classes: int = 2
    sequence_length: int = uses("SEQUENCE_LENGTH")
    frame_width: int = uses("FRAME_WIDTH")  # how stage 1 cut the crops (its meta.json)
    frame_height: int = uses("FRAME_HEIGHT")
    crop_margin: float = uses("CROP_MARGIN")
    target_fps: float = uses("TARGET_FPS")
    person_tracking: bool = uses("ENABLE_PERSON_TRACKING")
    jpeg_quality: int = internal(95, Rule(int, low=1, high=100))
    pad_mode: str = uses("PAD_MODE")
    min_sequence_frames: int = uses("MIN_SEQUENCE_FRAMES")
    bidirectional: bool = internal(True, FLAG)  # the architecture, as this version builds it (RULES of old ones)
    head_hidden_dim: int = internal(128, Rule(int, low=1, high=4096))  # the head: FC -> ReLU -> Dropout -> FC
    head_dropout: float = internal(0.3, FRACTION)
    pose_imgsz: int = internal(224, Rule(int, low=32, high=4096))  # the pose model's input (the crop size)
    video_clip_length: int = internal(16, Rule(int, low=1, high=256))  # images per I3D clip ("scene_video")
    mil_pooling: str = recorded("MIL_POOLING", "none")  # as training resolved "auto" (behavior.data.mil)
    cpu_precision: str = recorded("INFERENCE_PRECISION", "float32")  # how MobileNetV2 and I3D ran on the CPU
    cnn_backend: str = "torch"  # where MobileNetV2 and I3D computed the features: "torch", "openvino", "onnxruntime"
    backbone: str = "mobilenet_v2"
    pose_sha256: str = ""  # the pose weights the keypoints came from ("" = no keypoint stream)
    video_sha256: str = ""  # the I3D weights the features came from ("" = no I3D stream)

    @property
    def appearance(self) -> bool:
        """True when the network reads MobileNetV2 features (and so needs the CNN)."""
        return "appearance" in self.inputs

    @property
    def scene_images(self) -> bool:
        """True when a stream reads stage 1's scene images (the whole frame)."""
        return bool(SCENE_STREAMS & set(self.inputs))

    @property
    def i3d(self) -> bool:
        """True when the network reads I3D features of the scene and so needs I3D."""
        return "scene_video" in self.inputs

    @property
    def feature_streams(self) -> list[str]:
        """The per-frame feature streams read, in ``FEATURE_STREAMS`` order."""
        return [name for name, _ in FEATURE_STREAMS if name in self.inputs]

    @property
    def feature_dim(self) -> int:
        """Length of the per-frame features: the crop's MobileNetV2 features, then the scene's I3D features."""
        return sum(dim for name, dim in FEATURE_STREAMS if name in self.inputs)

    @property
    def needs_keypoints(self) -> bool:
        """True when a stream reads the pose model's keypoints."""
        return bool(KEYPOINT_STREAMS & set(self.inputs))

    @property
    def vector_dim(self) -> int:
        """Length of the per-frame vector of the non-appearance streams."""
        return vector_dim(self.inputs, self.object_classes)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, for checkpoints loaded with ``weights_only=True``."""
        out = asdict(self)
        out["inputs"] = list(self.inputs)
        out["actor_classes"] = list(self.actor_classes)
        out["object_classes"] = list(self.object_classes)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Rebuild from ``to_dict`` output, checking every value; unknown keys are ignored, missing ones are an error.

        A checkpoint is input like any other: a wrong type or value (``sequence_length: "sixteen"``)
        raises InputError naming the field, never a traceback deep in the network.
        """
        if not isinstance(data, dict):
            raise InputError(f"model_config is a {type(data).__name__}, not a dict")
        data = _upgrade(data)
        names = {f.name for f in fields(cls)}
        missing = names - set(data)
        if missing:
            raise InputError(f"model_config lacks {', '.join(sorted(missing))}")
        kwargs = {k: v for k, v in data.items() if k in names}
        for name, constant in constants_of(cls).items():
            message = settings.problem(constant, kwargs[name], label=f"model_config {name}")
            if message:
                raise InputError(message)
        for f in fields(cls):
            rule = f.metadata.get("rule")
            if rule is not None and not rule.accepts(kwargs[f.name]):
                raise InputError(f"model_config {f.name} must be {rule.describe()}, got {kwargs[f.name]!r}")
        num_classes = kwargs["num_classes"]
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise InputError(f"model_config num_classes must be an integer >= 2, got {num_classes!r}")
        if kwargs["cnn_backend"] not in CNN_BACKENDS:
            raise InputError(f"model_config cnn_backend must be one of: {', '.join(CNN_BACKENDS)}, "
                             f"got {kwargs['cnn_backend']!r}")
        if kwargs["backbone"] not in BACKBONES:
            raise InputError(f"model_config backbone must be one of: {', '.join(BACKBONES)}, "
                             f"got {kwargs['backbone']!r}")
        kwargs["inputs"] = tuple(kwargs["inputs"])
        kwargs["actor_classes"] = tuple(kwargs["actor_classes"])
        kwargs["object_classes"] = tuple(kwargs["object_classes"])
        cfg = cls(**kwargs)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise InputError for combinations the network cannot be built with (single values: ``settings``)."""
        if self.cnn_input == "difference" and self.fine_tune_blocks > 0:
            raise InputError("CNN_INPUT 'difference' needs a frozen backbone: set CNN_INPUT 'rgb' to fine-tune "
                             "(FINE_TUNE_BLOCKS > 0)")
        if self.num_classes < 2:
            raise InputError(f"need at least two classes, got {self.num_classes}")
        if not self.appearance and self.fine_tune_blocks > 0:
            raise InputError("fine-tuning MobileNetV2 needs 'appearance' in INPUTS")
        if self.needs_keypoints and not self.person_tracking:
            raise InputError("INPUTS 'pose', 'interaction' and 'reach' need ENABLE_PERSON_TRACKING")
        if self.i3d and self.fine_tune_blocks > 0:
            raise InputError("INPUTS 'scene_video' needs a frozen MobileNetV2 (FINE_TUNE_BLOCKS 0): its features "
                             "are cached")
        if "scene_video" in self.inputs and not self.person_tracking:
            raise InputError("INPUTS 'scene_video' needs ENABLE_PERSON_TRACKING")
        if "objects" in self.inputs and not (self.object_classes and self.person_tracking):
            raise InputError("INPUTS 'objects' needs OBJECT_CLASSES and ENABLE_PERSON_TRACKING")
        settings.check(self.values())


def _upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """A model_config written by an earlier version in today's terms; InputError when it used a removed option."""
    for key, value in REMOVED_OPTIONS.items():
        if key in data and data[key] != value:
            raise InputError(f"this checkpoint was trained with {key.upper()} {data[key]!r}, an option this version "
                             f"removed (docs/EXPERIMENTS.md); retrain it with today's settings")
    if "scene" in (data.get("inputs") or ()):
        raise InputError("this checkpoint was trained with INPUTS 'scene', which this version removed "
                         "(docs/EXPERIMENTS.md); retrain it with today's settings (\"scene_video\" reads the scene)")
    if data.get("freeze_backbone") is False and not data.get("fine_tune_blocks"):
        data = {**data, "fine_tune_blocks": BACKBONE_BLOCKS}  # FREEZE_BACKBONE off trained every block
    data = {**LEGACY_DEFAULTS, **data}
    inputs = data.get("inputs")
    if inputs is None or "crops" in inputs:
        motion = data.get("use_motion", inputs is not None and "motion" in inputs)
        data["inputs"] = ["appearance", "motion"] if motion else ["appearance"]
    return data


def load_backbone(weights: Path | None) -> nn.Sequential:
    """MobileNetV2's convolutional trunk with ImageNet weights from ``weights`` (a state_dict)."""
    from torchvision.models import mobilenet_v2

    net = mobilenet_v2()
    if weights is not None:
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            net.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
        except Exception as exc:
            raise InputError(f"cannot load MobileNetV2 weights {weights}: {first_line(exc)}") from exc
    return net.features


class SequenceClassifier(nn.Module):
    """One classifier of a sequence: per-frame streams, each embedded -> BiLSTM -> FC, ReLU, Dropout, FC.

    ``BehaviorNet`` holds ``ENSEMBLE_SIZE`` of them, trained side by side from different initial weights.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        in_dim = 0
        if cfg.feature_streams:
            self.feature_dropout = nn.Dropout(cfg.dropout)  # appearance is easy to memorize; motion is not
        for name, dim in FEATURE_STREAMS:  # the scene: what the people around do, which a crop only partly shows
            if name in cfg.inputs:
                setattr(self, NORM_NAMES[name], nn.LayerNorm(dim))
                in_dim += dim
        self.dims = stream_dims(cfg.inputs, cfg.object_classes)
        self.streams = list(self.dims)
        for stream, dim in self.dims.items():  # named: checkpoints keep "members.0.motion.0.weight"
            setattr(self, stream, nn.Sequential(nn.Linear(dim, EMBED_DIMS[stream]), nn.ReLU()))
            in_dim += EMBED_DIMS[stream]
        # batch norm puts positions (~0.5 body heights) and velocities (up to 10 a second) on one scale; a separate
        # module, so that checkpoints made without it keep their keys
        self.stream_norms = nn.ModuleDict({s: nn.BatchNorm1d(d) for s, d in self.dims.items()}) if cfg.stream_norm \
            else None
        self.lstm = nn.LSTM(in_dim, cfg.hidden_dim, cfg.num_layers, batch_first=True,
                            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0, bidirectional=cfg.bidirectional)
        out_dim = cfg.hidden_dim * (2 if cfg.bidirectional else 1)
        self.head = nn.Sequential(nn.Linear(out_dim, cfg.head_hidden_dim), nn.ReLU(), nn.Dropout(cfg.head_dropout),
                                  nn.Linear(cfg.head_hidden_dim, cfg.num_classes))

    def forward(self, features: torch.Tensor | None, vectors: torch.Tensor | None) -> torch.Tensor:
        """Features (B, T, ``cfg.feature_dim``: the crop's 1280, the scene's, then I3D's 1024 of the tube and of the
        scene, those ``cfg.inputs`` name; None without a feature stream) and stream vectors (B, T, D) -> logits (B, C).
        """
        parts = []
        offset = 0
        for name, dim in FEATURE_STREAMS:
            if name in self.cfg.inputs:
                chunk = features[..., offset:offset + dim].float()
                parts.append(self.feature_dropout(getattr(self, NORM_NAMES[name])(chunk)))
                offset += dim
        if self.streams:
            lead = parts[0].shape[:2] if parts else vectors.shape[:2]
            device = parts[0].device if parts else vectors.device
            if vectors is None:
                vectors = torch.zeros(*lead, self.cfg.vector_dim, device=device)
            offset = 0
            for stream, dim in self.dims.items():
                chunk = vectors[..., offset:offset + dim].float()
                if self.stream_norms is not None:  # over the batch and time: (B, T, D) -> (B, D, T)
                    chunk = self.stream_norms[stream](chunk.transpose(1, 2)).transpose(1, 2)
                parts.append(getattr(self, stream)(chunk))
                offset += dim
        out, (h_n, _) = self.lstm(torch.cat(parts, dim=-1))
        if self.cfg.bidirectional:
            pooled = torch.cat([h_n[-2], h_n[-1]], dim=-1)  # last layer, both directions
        else:
            pooled = h_n[-1]
        return self.head(pooled)


def combine_members(logits: torch.Tensor) -> torch.Tensor:
    """The ensemble's logits (B, C) from its members' (M, B, C): the mean of their log-probabilities, so that the
    softmax of the result is their normalized geometric mean (one member: its own logits).

    Example:
        >>> combine_members(torch.tensor([[[2.0, 0.0]], [[0.0, 2.0]]])).softmax(-1).tolist()
        [[0.5, 0.5]]
    """
    if logits.shape[0] == 1:
        return logits[0]
    return torch.log_softmax(logits.float(), dim=-1).mean(dim=0)


def upgrade_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state_dict saved before the ensemble (``lstm.weight_ih_l0``) in today's keys (``members.0.lstm...``)."""
    if any(k.startswith("members.") for k in state):
        return state
    return {k if k.startswith("backbone.") else f"members.0.{k}": v for k, v in state.items()}


class BehaviorNet(nn.Module):
    """MobileNetV2 (when the model reads appearance) and ``ENSEMBLE_SIZE`` sequence classifiers whose
    log-probabilities are averaged."""

    def __init__(self, cfg: ModelConfig, backbone: nn.Sequential | None) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.backbone = backbone
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.members = nn.ModuleList(SequenceClassifier(cfg) for _ in range(cfg.ensemble_size))
        if backbone is not None:
            self.set_backbone_trainable(cfg.fine_tune_blocks)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):  # noqa: ANN001, ANN201
        """``nn.Module.load_state_dict``, also for checkpoints saved before the ensemble (``upgrade_state_dict``)."""
        return super().load_state_dict(upgrade_state_dict(state_dict), strict=strict, assign=assign)

    def set_backbone_trainable(self, blocks: int) -> None:
        """Freeze the backbone except its last ``blocks`` blocks; batch norms always stay in eval mode."""
        assert self.backbone is not None
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        if blocks > 0:
            for block in list(self.backbone.children())[-blocks:]:
                for p in block.parameters():
                    p.requires_grad_(True)

    def train(self, mode: bool = True) -> BehaviorNet:
        """Like ``nn.Module.train``, but the backbone's batch norms (and a frozen backbone) stay in eval mode."""
        super().train(mode)
        if self.backbone is not None:
            trainable = any(p.requires_grad for p in self.backbone.parameters())
            self.backbone.train(mode and trainable)
            for m in self.backbone.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """Crops as float RGB in [0, 1], (..., 3, H, W) -> MobileNetV2 features (..., 1280)."""
        if self.backbone is None:
            raise RuntimeError("this BehaviorNet was built without a backbone")
        lead = frames.shape[:-3]
        x = frames.reshape(-1, *frames.shape[-3:])
        x = ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
        x = self.backbone(x)
        return x.mean(dim=(2, 3)).reshape(*lead, FEATURE_DIM)

    def forward(self, x: torch.Tensor | None, vectors: torch.Tensor | None = None,
                members: bool = False) -> torch.Tensor:
        """Classify sequences -> logits (B, C); with ``members``, every member's logits (M, B, C) (training).

        ``x``: features (B, T, 1280) or crops (B, T, 3, H, W); ignored (may be None) without "appearance".
        ``vectors``: the other streams concatenated per frame (B, T, ``cfg.vector_dim``), in
        ``streams.vector_streams`` order; None reads as zeros.
        """
        if self.cfg.appearance and x.dim() == 5:
            x = self.embed(x)  # once for all members
        logits = torch.stack([member(x, vectors) for member in self.members])
        return logits if members else combine_members(logits)


def background_index(model_config: ModelConfig, classes: list[str]) -> int | None:
    """The position of BACKGROUND_CLASS among ``classes``, or None without one."""
    return classes.index(model_config.background_class) if model_config.background_class else None
