"""The allowed values of every ``config.py`` constant, checked in one place before any work starts.

Each constant has a ``Rule``: its type, its range or its choices. ``validate`` checks a whole
settings dict (config.py after command-line overrides) and raises one ``InputError`` that names
the constant, its flag, what is allowed and what was given. ``check`` applies the same rules to
any subset, which is how a checkpoint's ``model_config`` is checked when it is loaded.

Example:
    >>> check({"LSTM_HIDDEN_DIM": 0})
    Traceback (most recent call last):
    ...
    behavior.errors.InputError: LSTM_HIDDEN_DIM (--lstm-hidden-dim) must be an integer >= 1, got 0
"""

from __future__ import annotations

import math
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from behavior.errors import InputError

# Choices, defined once: the modules that act on them import them from here.
PAD_MODES = ("reverse", "drop")
CNN_INPUTS = ("rgb", "difference")
STREAMS = ("appearance", "scene_video", "motion", "pose", "interaction", "reach",
           "reached")  # what the net reads (INPUTS)
CNN_PRECISIONS = ("auto", "float32", "bfloat16")
INFERENCE_BACKENDS = ("auto", "torch", "openvino", "onnxruntime")  # where the networks run (behavior.backends)
INFERENCE_PRECISIONS = ("float32", "bfloat16")  # how OpenVINO computes the detector and the pose model
# how a clip's people make its label, or (roles) each person's (behavior.mil)
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

RULES: dict[str, Rule] = {
    # paths and weights
    "CLIPS_DIR": TEXT, "FRAMES_DIR": TEXT, "SEQUENCES_FILE": TEXT, "FEATURES_DIR": TEXT, "MODEL_DIR": TEXT,
    "OUTPUT_DIR": Rule(str), "YOLO_WEIGHTS": TEXT, "BACKBONE_WEIGHTS": TEXT,
    "POSE_WEIGHTS": TEXT, "I3D_WEIGHTS": TEXT,
    # stage 1
    "TARGET_FPS": Rule(float, low=0, high=1000),
    "FRAME_WIDTH": Rule(int, low=8, high=4096), "FRAME_HEIGHT": Rule(int, low=8, high=4096),
    "CROP_MARGIN": Rule(float, low=0, high=5),
    "ENABLE_PERSON_TRACKING": FLAG,
    "MAX_PERSONS_PER_VIDEO": INT_POS, "MIN_TRACK_FRAMES": INT_POS,
    "YOLO_CONF_THRESHOLD": Rule(float, low=0, high=1, low_open=True, high_open=True),
    "YOLO_IOU_THRESHOLD": Rule(float, low=0, high=1, low_open=True),
    "YOLO_IMGSZ": Rule(int, low=32, high=4096),
    "TRACKER_CONFIG": TEXT,
    "JPEG_QUALITY": Rule(int, low=1, high=100),
    "DEVICE": Rule(str, pattern=DEVICE_PATTERN, words="auto, cpu, cuda, cuda:N or a GPU number"),
    "TORCH_THREADS": INT_NONNEG,
    # stage 2
    "SEQUENCE_LENGTH": INT_POS, "SEQUENCE_STRIDE": INT_POS,
    "MAX_GAP_FRAMES": INT_NONNEG, "MIN_SEQUENCE_FRAMES": INT_POS,
    "PAD_MODE": Rule(str, choices=PAD_MODES),
    "MAX_SEQUENCES_PER_VIDEO": INT_NONNEG,
    "SPLIT_FRACTIONS": Rule(float, low=0, high=1, length=3),
    "GROUPS_FILE": Rule(str), "GROUP_PATTERN": Rule(str),
    "SEED": Rule(int, low=0, high=2**63 - 1),
    # stage 3
    "LSTM_HIDDEN_DIM": INT_POS, "LSTM_NUM_LAYERS": INT_POS, "LSTM_DROPOUT": FRACTION,
    "BIDIRECTIONAL": FLAG,
    "HEAD_HIDDEN_DIM": INT_POS, "HEAD_DROPOUT": FRACTION, "STREAM_NORM": FLAG,
    "ENSEMBLE_SIZE": Rule(int, low=1, high=32),
    "INPUTS": Rule(tuple, choices=STREAMS), "POSE_IMGSZ": Rule(int, low=32, high=4096),
    "VIDEO_CLIP_LENGTH": Rule(int, low=1, high=256), "VIDEO_SIZE": Rule(int, low=32, high=1024),
    "CNN_INPUT": Rule(str, choices=CNN_INPUTS),
    "MIL_POOLING": Rule(str, choices=MIL_POOLINGS), "BACKGROUND_CLASS": Rule(str), "ACTOR_CLASSES": Rule(tuple),
    "FINE_TUNE_BLOCKS": Rule(int, low=0, high=BACKBONE_BLOCKS),
    "AUGMENT": FLAG,
    "BATCH_SIZE": INT_POS,
    "LEARNING_RATE": Rule(float, low=0, low_open=True),
    "WEIGHT_DECAY": Rule(float, low=0),
    "NUM_EPOCHS": INT_POS, "EARLY_STOPPING_PATIENCE": INT_POS, "LR_PATIENCE": INT_NONNEG,
    "LR_FACTOR": Rule(float, low=0, high=1, low_open=True, high_open=True),
    "GRAD_CLIP_NORM": Rule(float, low=0),
    "FOCAL_GAMMA": Rule(float, low=0),
    "CNN_PRECISION": Rule(str, choices=CNN_PRECISIONS),
    "INFERENCE_BACKEND": Rule(str, choices=INFERENCE_BACKENDS),
    "INFERENCE_PRECISION": Rule(str, choices=INFERENCE_PRECISIONS),
    "DETECT_BATCH": INT_POS,
    "FEATURE_BATCH_SIZE": INT_POS, "NUM_WORKERS": INT_NONNEG,
    # stage 4
    "CHECKPOINT": Rule(str),
    "PREDICT_STRIDE": INT_POS,
    "SMOOTHING": Rule(float, low=0, high=1, low_open=True),
    "VIDEO_LABEL_RULE": Rule(str, choices=VIDEO_LABEL_RULES),
    "DRAW_POSE": FLAG,
    "LOG_LEVEL": Rule(str, choices=LOG_LEVELS),
}


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
    if cfg.get("GROUPS_FILE") and cfg.get("GROUP_PATTERN"):
        raise InputError("give GROUPS_FILE (--groups-file) or GROUP_PATTERN (--group-pattern), not both")
    if cfg.get("GROUP_PATTERN"):
        from behavior.splits import compile_group_pattern

        compile_group_pattern(str(cfg["GROUP_PATTERN"]))
    if "DEVICE" in cfg:
        from behavior.runtime import resolve_device

        resolve_device(str(cfg["DEVICE"]))  # an unavailable GPU is refused here, before any work


def build_settings(cls: type, cfg: Mapping[str, Any], constants: Mapping[str, str], **nested: Any) -> Any:
    """Build the settings dataclass ``cls``: each field from its config constant, cast to the field's type.

    ``constants`` maps field names to constant names, the one place a stage names its settings.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class Speed:
        ...     fps: float = 15.0
        >>> build_settings(Speed, {"TARGET_FPS": 5}, {"fps": "TARGET_FPS"})
        Speed(fps=5.0)
    """
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, constant in constants.items():
        value, kind = cfg[constant], hints[name]
        if kind in (int, float, str, bool):
            value = kind(value)
        elif typing.get_origin(kind) is tuple:
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs, **nested)


def values_of(obj: Any, constants: Mapping[str, str]) -> dict[str, Any]:
    """A settings dataclass's fields under the names of the constants they come from."""
    return {constant: getattr(obj, name) for name, constant in constants.items()}


def check_fields(obj: Any, constants: Mapping[str, str]) -> None:
    """``check`` the fields of a settings dataclass by the rules of the constants they come from."""
    check(values_of(obj, constants))
