import os

import pytest
import torch

from behavior.runtime import environment


def brute_force_nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> list[int]:
    """The textbook definition: visit boxes by score, keep one unless it overlaps a kept box too much."""
    def iou(a, b):
        w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = w * h
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union if union > 0 else 0.0

    kept: list[int] = []
    for i in sorted(range(len(scores)), key=lambda k: -float(scores[k])):
        if all(iou(boxes[i].tolist(), boxes[j].tolist()) <= threshold for j in kept):
            kept.append(i)
    return kept


def random_boxes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 100
    wh = torch.rand(n, 2, generator=g) * 40 + 1
    scores = torch.randperm(n * 10, generator=g)[:n].float() / (n * 10)  # distinct scores
    return torch.cat([xy, xy + wh], dim=1), scores


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_reference_nms_matches_brute_force(seed, threshold):
    boxes, scores = random_boxes(60, seed)
    assert environment.nms_reference(boxes, scores, threshold).tolist() == brute_force_nms(boxes, scores, threshold)


@pytest.mark.parametrize("seed", range(3))
def test_torchvision_nms_matches_brute_force(seed):
    import torchvision

    boxes, scores = random_boxes(80, seed)
    assert torchvision.ops.nms(boxes, scores, 0.5).tolist() == brute_force_nms(boxes, scores, 0.5)


def test_batched_nms_keeps_classes_apart():
    import torchvision

    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    kept = torchvision.ops.batched_nms(boxes, scores, torch.tensor([0, 1, 0]), 0.5)
    assert kept.tolist() == [0, 1]


def test_empty_input():
    assert environment.nms_reference(torch.zeros(0, 4), torch.zeros(0), 0.5).tolist() == []


def test_fallback_only_when_compiled_ops_are_missing():
    import torchvision  # noqa: F401  (must import either way)

    native = environment._torchvision_ops_load() and not environment.NMS_FALLBACK_ACTIVE
    assert environment.NMS_FALLBACK_ACTIVE != native
    environment.setup()  # idempotent
    assert hasattr(torch.ops.torchvision, "nms")


def test_ultralytics_is_offline_and_project_local():
    assert os.environ["YOLO_OFFLINE"].lower() in {"true", "1"}
    assert os.environ["YOLO_AUTOINSTALL"] == "false"
    assert os.environ["YOLO_CONFIG_DIR"] == str(environment.PROJECT_ROOT / ".ultralytics")


def test_does_nothing_when_compiled_ops_exist():
    """Simulate a torchvision whose ops loaded: the fallback must not be registered."""
    import subprocess
    import sys

    code = (
        "import torch\n"
        "lib = torch.library.Library('torchvision', 'DEF')\n"
        "lib.define('nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')\n"
        "from behavior.runtime import environment\n"
        "environment.setup()\n"
        "print(environment.NMS_FALLBACK_ACTIVE, environment._OPS_LIBRARY is None)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=environment.PROJECT_ROOT, capture_output=True, text=True)
    assert proc.stdout.split() == ["False", "True"], proc.stderr
