"""Every ``config.py`` constant's declaration: which stage's settings class holds it, and its allowed values.

config.py holds each constant's value and, in the comment beside it, its help. Here one field of one
settings class declares it (``setting``) with a ``Rule``: its type, its range or its choices. Its
default, its command-line flag, its validation and its place in a checkpoint all derive from that
field (docs/ARCHITECTURE.md). ``validate`` checks a whole settings dict (config.py after command-line
overrides) and raises one ``InputError`` that names the constant, its flag, what is allowed and what
was given. ``check`` applies the same rules to any subset, which is how a checkpoint's
``model_config`` is checked when it is loaded.

Example:
    >>> check({"LSTM_HIDDEN_DIM": 0})
    Traceback (most recent call last):
    ...
    behavior.errors.InputError: LSTM_HIDDEN_DIM (--lstm-hidden-dim) must be an integer in [1, 4096], got 0
"""

from __future__ import annotations

import math
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from behavior.errors import InputError
from behavior.runtime.hardware import resolve_device

# Choices, defined once: the modules that act on them import them from here.
SCENE_STREAMS = frozenset({"scene_video"})  # the INPUTS that read stage 1's scene images (the whole frame)
PAD_MODES = ("reverse", "drop")
CNN_INPUTS = ("rgb", "difference")
STREAMS = ("appearance", "scene_video", "motion", "pose", "interaction", "reach",
           "reached", "objects")  # what the net reads (INPUTS)
INFERENCE_BACKENDS = ("auto", "torch", "openvino", "onnxruntime")  # where the networks run (behavior.runtime.backends)
INFERENCE_PRECISIONS = ("auto", "float32", "bfloat16")  # how the networks compute on the CPU (runtime.cpu_precision)
# how a clip's people make its label, or (roles) each person's (behavior.data.mil)
MIL_POOLINGS = ("auto", "none", "max", "roles")
VIDEO_LABEL_RULES = ("auto", "mean", "max", "mean_min")  # "auto": the pooling the model was trained with
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
BACKBONE_BLOCKS = 19  # children of torchvision's mobilenet_v2().features: stem, 17 inverted residuals, last conv
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda|cuda:\d+|\d+|mps)$")


@dataclass(frozen=True)
class Rule:
    """What one constant may hold: a type, and a range (``low``/``high``, open or closed) or choices."""

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    length: int = 0  # tuples: the number of items, each checked against the range
    nonempty: bool = False  # strings
    pattern: re.Pattern | None = None
    words: str = ""  # how to describe a pattern to the user

    def describe(self) -> str:
        """What is allowed, in words: "an integer >= 1", "a number in [0, 1)", "one of: a, b"."""
        if self.kind is tuple and not self.choices:
            return "names, each at most once (none at all is allowed)"
        if self.kind is tuple:
            return "one or more of: " + ", ".join(self.choices) + " (each at most once)"
        if self.choices:
            return "one of: " + ", ".join(self.choices)
        if self.kind is bool:
            return "true or false"
        if self.kind is str:
            if self.words:
                return self.words
            return "a non-empty text" if self.nonempty else "a text"
        noun = "an integer" if self.kind is int else "a number"
        if self.length:
            noun = f"{self.length} numbers, each"
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"{noun} in {left}{_num(self.low)}, {_num(self.high)}{right}"
        if self.low is not None:
            return f"{noun} {'>' if self.low_open else '>='} {_num(self.low)}"
        if self.high is not None:
            return f"{noun} {'<' if self.high_open else '<='} {_num(self.high)}"
        return noun

    def accepts(self, value: Any) -> bool:
        """True when ``value`` has the right type and lies in the range or among the choices."""
        if self.kind is tuple:
            return (isinstance(value, list | tuple) and (len(value) > 0 or not self.choices)
                    and len(set(value)) == len(value)
                    and all(isinstance(v, str) and v.strip() and (v in self.choices or not self.choices)
                            for v in value))
        if self.length:
            return (isinstance(value, list | tuple) and len(value) == self.length
                    and all(self._scalar_ok(v, float) for v in value))
        return self._scalar_ok(value, self.kind)

    def _scalar_ok(self, value: Any, kind: type) -> bool:
        if kind is bool:
            return isinstance(value, bool)
        if kind is str:
            if not isinstance(value, str) or (self.nonempty and not value.strip()):
                return False
            if self.choices and value not in self.choices:
                return False
            return self.pattern is None or bool(self.pattern.match(value))
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if kind is int and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or not (value >= self.high if self.high_open else value > self.high)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


INT_POS = Rule(int, low=1)
INT_NONNEG = Rule(int, low=0)
TEXT = Rule(str, nonempty=True)
FLAG = Rule(bool)
FRACTION = Rule(float, low=0, high=1, high_open=True)  # dropouts, smoothing: [0, 1)

RULES: dict[str, Rule] = {}  # every config.py constant's rule, filled by the declarations below


def config_value(constant: str) -> Any:
    """config.py's value of ``constant`` (lists as tuples: settings are immutable)."""
    import config

    value = getattr(config, constant)
    return tuple(value) if isinstance(value, list) else value


def setting(constant: str, rule: Rule) -> Any:
    """Declare a field as config.py's ``constant``: its allowed values here, its default and help in config.py.

    Each constant is declared by exactly one field of one settings class; every other use is ``uses``.
    """
    if constant in RULES:
        raise TypeError(f"{constant} is declared twice")
    RULES[constant] = rule
    return field(default=config_value(constant), metadata={"constant": constant, "declares": True})


def uses(constant: str) -> Any:
    """A field holding a setting that another class declares (config.py's value by default)."""
    return field(default=config_value(constant), metadata={"constant": constant})


def recorded(constant: str, default: Any) -> Any:
    """A field recording ``constant`` as resolved (``"auto"`` made concrete), checked by its rule."""
    return field(default=default, metadata={"constant": constant})


def internal(default: Any, rule: Rule) -> Any:
    """A field that is not a setting (a fixed part of this version) but is recorded, and checked when read back."""
    return field(default=default, metadata={"rule": rule})


def constants_of(cls: Any, declared_only: bool = False) -> dict[str, str]:
    """A settings class's fields that hold config.py constants: field name -> constant."""
    return {f.name: f.metadata["constant"] for f in fields(cls)
            if "constant" in f.metadata and (f.metadata.get("declares") or not declared_only)}


class Settings:
    """What every settings dataclass can do: be built from config.py's values, and check them."""

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], **nested: Any) -> Any:
        """Build from the effective config.py values (after command-line overrides), each cast to its field's type.

        Example:
            >>> SequenceSettings.from_config({"SEQUENCE_LENGTH": 8, "SEQUENCE_STRIDE": 2, "MIN_SEQUENCE_FRAMES": 4,
            ...                               "PAD_MODE": "drop", "BACKGROUND_CLASS": ""}).length
            8
        """
        hints = typing.get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for name, constant in constants_of(cls).items():
            value, kind = cfg[constant], hints[name]
            kwargs[name] = tuple(value) if typing.get_origin(kind) is tuple else kind(value) if kind in (
                int, float, str, bool) else value
        return cls(**kwargs, **nested)

    def values(self) -> dict[str, Any]:
        """This object's settings under the names of their config.py constants."""
        return {constant: getattr(self, name) for name, constant in constants_of(self).items()}

    def validate(self) -> None:
        """Raise InputError for values no run could use, nested settings included."""
        validate(self.values())
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, Settings):
                value.validate()


# --- The declarations: one field per config.py constant, by stage ------------------------------------------------

@dataclass(frozen=True)
class Paths(Settings):
    """Where the stages read and write."""

    clips_dir: str = setting("CLIPS_DIR", TEXT)
    frames_dir: str = setting("FRAMES_DIR", TEXT)
    sequences_file: str = setting("SEQUENCES_FILE", TEXT)
    features_dir: str = setting("FEATURES_DIR", TEXT)
    model_dir: str = setting("MODEL_DIR", TEXT)
    annotations_dir: str = setting("ANNOTATIONS_DIR", Rule(str))


@dataclass(frozen=True)
class Weights(Settings):
    """The networks' weights besides the detector's."""

    backbone_weights: str = setting("BACKBONE_WEIGHTS", TEXT)
    pose_weights: str = setting("POSE_WEIGHTS", TEXT)
    i3d_weights: str = setting("I3D_WEIGHTS", TEXT)


@dataclass(frozen=True)
class Runtime(Settings):
    """Where and how the networks run: speed, not results (within the parity tests' tolerance)."""

    device: str = setting("DEVICE", Rule(str, pattern=DEVICE_PATTERN, words="auto, cpu, cuda, cuda:N or a GPU number"))
    threads: int = setting("TORCH_THREADS", INT_NONNEG)
    backend: str = setting("INFERENCE_BACKEND", Rule(str, choices=INFERENCE_BACKENDS))
    precision: str = setting("INFERENCE_PRECISION", Rule(str, choices=INFERENCE_PRECISIONS))


@dataclass(frozen=True)
class DetectorSettings(Settings):
    """Everything that decides which boxes come out of the detector and tracker."""

    weights: str = setting("YOLO_WEIGHTS", TEXT)
    conf: float = setting("YOLO_CONF_THRESHOLD", Rule(float, low=0, high=1, low_open=True, high_open=True))
    imgsz: int = setting("YOLO_IMGSZ", Rule(int, low=32, high=4096))
    iou: float = 0.7  # the detector's NMS IoU
    tracker_config: str = "bytetrack.yaml"  # an Ultralytics ByteTrack YAML (name or path)
    batch: int = setting("DETECT_BATCH", Rule(int, low=1, high=256))  # frames detected in one call: speed only
    device: str = uses("DEVICE")
    threads: int = uses("TORCH_THREADS")
    backend: str = uses("INFERENCE_BACKEND")
    precision: str = uses("INFERENCE_PRECISION")
    object_classes: tuple[str, ...] = ()  # COCO classes kept beside the people, from the same detector call


@dataclass(frozen=True)
class ExtractSettings(Settings):
    """Stage 1: what decides the crops it writes; recorded in every meta.json."""

    target_fps: float = setting("TARGET_FPS", Rule(float, low=0, high=1000))
    frame_width: int = setting("FRAME_WIDTH", Rule(int, low=8, high=4096))
    frame_height: int = setting("FRAME_HEIGHT", Rule(int, low=8, high=4096))
    crop_margin: float = setting("CROP_MARGIN", Rule(float, low=0, high=5))
    person_tracking: bool = setting("ENABLE_PERSON_TRACKING", FLAG)
    max_persons: int = setting("MAX_PERSONS_PER_VIDEO", INT_POS)
    min_track_frames: int = 8  # tracks seen in fewer kept frames are dropped (as stage 2 drops shorter segments)
    jpeg_quality: int = 95  # of the saved crops (prediction encodes its crops the same way)
    scene: bool = False  # also save every kept frame whole (INPUTS "scene_video"); added to finished videos later
    objects: tuple[str, ...] = ()  # also save these classes' boxes (INPUTS "objects"); added to finished videos later
    annotations_dir: str = uses("ANNOTATIONS_DIR")  # videos with an annotation file there are imported, not detected
    detector: DetectorSettings = field(default_factory=DetectorSettings)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], **nested: Any) -> ExtractSettings:
        """Stage 1's settings; it saves the scene images and the objects when a stream of INPUTS reads them."""
        tracking = bool(cfg["ENABLE_PERSON_TRACKING"])
        scene = bool(SCENE_STREAMS & set(cfg["INPUTS"])) and tracking
        objects = tuple(cfg["OBJECT_CLASSES"]) if "objects" in cfg["INPUTS"] and tracking else ()
        return super().from_config(cfg, detector=DetectorSettings.from_config(cfg), scene=scene, objects=objects,
                                   **nested)


@dataclass(frozen=True)
class SequenceSettings(Settings):
    """Stage 2: how person tracks become windows."""

    length: int = setting("SEQUENCE_LENGTH", Rule(int, low=1, high=1024))
    stride: int = setting("SEQUENCE_STRIDE", INT_POS)
    min_frames: int = setting("MIN_SEQUENCE_FRAMES", INT_POS)
    pad_mode: str = setting("PAD_MODE", Rule(str, choices=PAD_MODES))
    max_gap: int = 5  # a track missing for more kept frames is cut into segments
    max_per_video: int = 0  # sequences kept per video (evenly spaced); 0 = all
    background_class: str = uses("BACKGROUND_CLASS")  # windows outside a user's labeled frame ranges


@dataclass(frozen=True)
class SplitSettings(Settings):
    """Stages 2 and 3: how videos are split, grouped by recording, and shuffled."""

    fractions: tuple[float, float, float] = setting("SPLIT_FRACTIONS", Rule(float, low=0, high=1, length=3))
    groups_file: str = setting("GROUPS_FILE", Rule(str))
    group_pattern: str = setting("GROUP_PATTERN", Rule(str))
    seed: int = setting("SEED", Rule(int, low=0, high=2**63 - 1))


@dataclass(frozen=True)
class ModelSettings(Settings):
    """Stage 3: what the network reads and how big it is; recorded in the checkpoint (``model.ModelConfig``)."""

    inputs: tuple[str, ...] = setting("INPUTS", Rule(tuple, choices=STREAMS))
    object_classes: tuple[str, ...] = setting("OBJECT_CLASSES", Rule(tuple))
    hidden_dim: int = setting("LSTM_HIDDEN_DIM", Rule(int, low=1, high=4096))
    num_layers: int = setting("LSTM_NUM_LAYERS", Rule(int, low=1, high=16))
    dropout: float = setting("LSTM_DROPOUT", FRACTION)
    stream_norm: bool = setting("STREAM_NORM", FLAG)
    ensemble_size: int = setting("ENSEMBLE_SIZE", Rule(int, low=1, high=32))
    cnn_input: str = setting("CNN_INPUT", Rule(str, choices=CNN_INPUTS))
    fine_tune_blocks: int = setting("FINE_TUNE_BLOCKS", Rule(int, low=0, high=BACKBONE_BLOCKS))
    video_size: int = setting("VIDEO_SIZE", Rule(int, low=32, high=1024))
    mil_pooling: str = setting("MIL_POOLING", Rule(str, choices=MIL_POOLINGS))
    background_class: str = setting("BACKGROUND_CLASS", Rule(str))
    actor_classes: tuple[str, ...] = setting("ACTOR_CLASSES", Rule(tuple))


@dataclass(frozen=True)
class TrainConfig(Settings):
    """Stage 3: how to train (paths, optimization, runtime)."""

    batch_size: int = setting("BATCH_SIZE", INT_POS)
    learning_rate: float = setting("LEARNING_RATE", Rule(float, low=0, low_open=True))
    epochs: int = setting("NUM_EPOCHS", Rule(int, low=1, high=100_000))
    patience: int = setting("EARLY_STOPPING_PATIENCE", INT_POS)
    focal_gamma: float = setting("FOCAL_GAMMA", Rule(float, low=0, high=10))
    weight_decay: float = 1e-4  # AdamW's decoupled weight decay
    lr_patience: int = 3  # ReduceLROnPlateau on the validation loss: epochs without a better one
    lr_factor: float = 0.5  # and the factor it multiplies the learning rate by
    grad_clip: float = 1.0  # the gradient norm is clipped to this
    augment: bool = True  # random horizontal flip (cached features); plus crop and color jitter when fine-tuning
    feature_batch_size: int = 64  # crops per MobileNetV2 batch when filling the feature cache
    num_workers: int = 0  # data-loading workers when fine-tuning reads the crops (0: in the main process)
    sequences_file: str = uses("SEQUENCES_FILE")
    frames_dir: str = uses("FRAMES_DIR")
    features_dir: str = uses("FEATURES_DIR")
    model_dir: str = uses("MODEL_DIR")
    backbone_weights: str = uses("BACKBONE_WEIGHTS")
    pose_weights: str = uses("POSE_WEIGHTS")
    i3d_weights: str = uses("I3D_WEIGHTS")
    seed: int = uses("SEED")
    device: str = uses("DEVICE")
    threads: int = uses("TORCH_THREADS")
    inference_backend: str = uses("INFERENCE_BACKEND")  # the pose model's (MobileNetV2's is in the model config)
    inference_precision: str = uses("INFERENCE_PRECISION")


@dataclass(frozen=True)
class PredictSettings(Settings):
    """Stage 4: how to run prediction; the model's own settings come from its checkpoint."""

    stride: int = setting("PREDICT_STRIDE", INT_POS)
    smoothing: float = setting("SMOOTHING", Rule(float, low=0, high=1, low_open=True))
    video_label_rule: str = setting("VIDEO_LABEL_RULE", Rule(str, choices=VIDEO_LABEL_RULES))
    draw_pose: bool = True  # draw each person's skeleton in annotated.mp4 (when the model reads keypoints)
    pose_weights: str = uses("POSE_WEIGHTS")
    i3d_weights: str = uses("I3D_WEIGHTS")
    detector: DetectorSettings = field(default_factory=DetectorSettings)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], **nested: Any) -> PredictSettings:
        """Stage 4's settings, with the detector's."""
        return super().from_config(cfg, detector=DetectorSettings.from_config(cfg), **nested)


DECLARING = (Paths, Weights, Runtime, DetectorSettings, ExtractSettings, SequenceSettings, SplitSettings,
             ModelSettings, TrainConfig, PredictSettings)  # every class that declares constants, in config.py order


def flag_name(constant: str) -> str:
    """``SEQUENCE_LENGTH`` -> ``--sequence-length``."""
    return "--" + constant.lower().replace("_", "-")


def problem(name: str, value: Any, label: str = "") -> str | None:
    """The message for constant ``name`` holding a value its rule refuses, or None when it is fine.

    ``label`` names the value when it does not come from config.py or a flag (a checkpoint field).
    """
    rule = RULES.get(name)
    if rule is None or rule.accepts(value):
        return None
    return f"{label or f'{name} ({flag_name(name)})'} must be {rule.describe()}, got {value!r}"


def check(values: Mapping[str, Any]) -> None:
    """Raise InputError for the first constant in ``values`` that its rule refuses."""
    for name, value in values.items():
        message = problem(name, value)
        if message:
            raise InputError(message)


def validate(cfg: Mapping[str, Any]) -> None:
    """Check every constant of ``cfg``, then the rules that tie several together; InputError on the first problem."""
    check(cfg)
    fractions = cfg.get("SPLIT_FRACTIONS")
    if fractions is not None:
        if not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
            raise InputError(f"SPLIT_FRACTIONS (--split-fractions) must sum to 1, got {tuple(fractions)}")
        if fractions[0] <= 0 or fractions[1] <= 0:
            raise InputError(f"SPLIT_FRACTIONS (--split-fractions) needs train and val > 0 (validation drives early "
                             f"stopping), got {tuple(fractions)}")
    fine_tuning = cfg.get("FINE_TUNE_BLOCKS", 0) > 0
    if cfg.get("CNN_INPUT") == "difference" and fine_tuning:
        raise InputError("CNN_INPUT 'difference' needs a frozen backbone: set CNN_INPUT 'rgb' to fine-tune "
                         "(FINE_TUNE_BLOCKS > 0)")
    inputs = tuple(cfg.get("INPUTS") or ())
    if "appearance" not in inputs and fine_tuning:
        raise InputError("fine-tuning MobileNetV2 (FINE_TUNE_BLOCKS) needs 'appearance' in INPUTS")
    if "scene_video" in inputs and fine_tuning:
        raise InputError("INPUTS 'scene_video' needs a frozen backbone (FINE_TUNE_BLOCKS 0)")
    if "objects" in inputs and not cfg.get("OBJECT_CLASSES"):
        raise InputError("INPUTS 'objects' needs OBJECT_CLASSES (--object-classes): the classes it reads")
    if cfg.get("GROUPS_FILE") and cfg.get("GROUP_PATTERN"):
        raise InputError("give GROUPS_FILE (--groups-file) or GROUP_PATTERN (--group-pattern), not both")
    if cfg.get("GROUP_PATTERN"):
        compile_group_pattern(str(cfg["GROUP_PATTERN"]))
    if "DEVICE" in cfg:
        resolve_device(str(cfg["DEVICE"]))  # an unavailable GPU is refused here, before any work


def compile_group_pattern(pattern: str) -> re.Pattern:
    """GROUP_PATTERN as a regular expression with a capture group; InputError when it is not one."""
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise InputError(f"GROUP_PATTERN (--group-pattern) is not a regular expression: {exc}") from None
    if regex.groups < 1:
        raise InputError(f"GROUP_PATTERN (--group-pattern) needs a capture group, e.g. ^\\d+_(\\d+)_; got {pattern!r}")
    return regex
