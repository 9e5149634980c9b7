import pytest
import torch

from behavior.errors import InputError
from behavior.features.streams import INTERACTION_DIM, REACH_DIM, REACHED_DIM
from behavior.io.weights import resolve_weights
from behavior.model.network import FEATURE_DIM, MOTION_DIM, POSE_DIM, BehaviorNet, ModelConfig, load_backbone


@pytest.fixture(scope="module")
def backbone_weights(weights_dir):
    return resolve_weights("mobilenet_v2_imagenet.pth")


def small(**kw) -> ModelConfig:
    return ModelConfig(**{"num_classes": 3, "sequence_length": 4, "hidden_dim": 16, "num_layers": 2,
                          "head_hidden_dim": 8, "inputs": ("appearance", "motion"), "cnn_input": "rgb", **kw})


@pytest.mark.parametrize("motion", [True, False])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_head_shapes(motion, bidirectional):
    inputs = ("appearance", "motion") if motion else ("appearance",)
    net = BehaviorNet(small(inputs=inputs, bidirectional=bidirectional), None)
    out = net(torch.randn(5, 4, FEATURE_DIM), torch.randn(5, 4, MOTION_DIM))
    assert out.shape == (5, 3)


def test_crops_go_through_the_backbone(backbone_weights):
    net = BehaviorNet(small(), load_backbone(backbone_weights)).eval()
    frames = torch.rand(2, 4, 3, 32, 32)
    assert net.embed(frames).shape == (2, 4, FEATURE_DIM)
    with torch.no_grad():
        assert torch.allclose(net(frames), net(net.embed(frames)), atol=1e-5)


def test_frozen_backbone_unchanged_after_a_step(backbone_weights):
    net = BehaviorNet(small(), load_backbone(backbone_weights))
    before = {k: v.clone() for k, v in net.backbone.state_dict().items()}
    head_before = net.members[0].head[0].weight.clone()
    net.train()
    assert not net.backbone.training
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.5)
    loss = net(torch.rand(2, 4, 3, 32, 32)).sum()
    loss.backward()
    opt.step()
    after = net.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and batch-norm statistics
    assert not torch.equal(head_before, net.members[0].head[0].weight)


def test_fine_tune_unfreezes_only_the_last_blocks(backbone_weights):
    net = BehaviorNet(small(fine_tune_blocks=2), load_backbone(backbone_weights))
    blocks = list(net.backbone.children())
    assert all(p.requires_grad for b in blocks[-2:] for p in b.parameters())
    assert not any(p.requires_grad for b in blocks[:-2] for p in b.parameters())
    net.train()
    bns = [m for m in net.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert net.backbone.training and not any(bn.training for bn in bns)


def test_config_round_trip_and_errors():
    cfg = small(fine_tune_blocks=3)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.to_dict()["inputs"] == ["appearance", "motion"]
    with pytest.raises(InputError, match="lacks"):
        ModelConfig.from_dict({"num_classes": 2})
    with pytest.raises(InputError, match=r"CNN_INPUT \(--cnn-input\) must be one of: rgb, difference"):
        BehaviorNet(small(cnn_input="flow"), None)
    with pytest.raises(InputError, match="needs a frozen backbone"):  # motion images exist only in the cache
        BehaviorNet(small(cnn_input="difference", fine_tune_blocks=2), None)


@pytest.mark.parametrize("field,value,message", [
    ("sequence_length", "sixteen", "model_config sequence_length must be an integer in \\[1, 1024\\], got 'sixteen'"),
    ("sequence_length", 0, "model_config sequence_length must be an integer in \\[1, 1024\\], got 0"),
    ("hidden_dim", 12.5, "model_config hidden_dim must be an integer in"),
    ("bidirectional", "yes", "model_config bidirectional must be true or false"),
    ("dropout", 1.0, r"model_config dropout must be a number in \[0, 1\)"),
    ("num_classes", 1, "model_config num_classes must be an integer >= 2"),
    ("backbone", "resnet50", "model_config backbone must be one of: mobilenet_v2"),
])
def test_checkpoint_model_config_is_checked_field_by_field(field, value, message):
    """A checkpoint is input: a wrong type or value is one clear error, never a failure deep in the network."""
    with pytest.raises(InputError, match=message):
        ModelConfig.from_dict({**small().to_dict(), field: value})


def test_bad_backbone_weights(tmp_path):
    bad = tmp_path / "m.pth"
    bad.write_bytes(b"junk")
    with pytest.raises(InputError, match="cannot load MobileNetV2 weights"):
        load_backbone(bad)


@pytest.mark.parametrize("inputs", [("pose",), ("motion", "pose", "interaction"),
                                    ("appearance", "motion", "pose", "interaction"),
                                    ("motion", "pose", "interaction", "reach", "reached")])
def test_streams_are_embedded_and_fused(inputs):
    cfg = small(inputs=inputs)
    net = BehaviorNet(cfg, None)
    dims = {"motion": MOTION_DIM, "pose": POSE_DIM, "interaction": INTERACTION_DIM, "reach": REACH_DIM,
            "reached": REACHED_DIM}
    assert cfg.vector_dim == sum(dims.get(s, 0) for s in inputs)
    features = torch.randn(2, 4, FEATURE_DIM) if cfg.appearance else None
    vectors = torch.randn(2, 4, cfg.vector_dim)
    assert net(features, vectors).shape == (2, 3)
    assert hasattr(net.members[0], "feature_norm") == cfg.appearance  # a pose-only model has no CNN part at all
    changed = vectors.clone()
    changed[..., -1] += 5.0  # the last stream's input reaches the output
    net.eval()
    assert not torch.allclose(net(features, vectors), net(features, changed))


@pytest.mark.parametrize("field,value", [("temporal_pooling", "attention"), ("normalize_std", [0.2, 0.1, 0.2]),
                                         ("inputs", ["appearance", "scene", "motion"])])
def test_a_checkpoint_of_a_removed_option_is_refused_in_one_line(field, value):
    """Options this version removed (docs/EXPERIMENTS.md): a checkpoint trained with one says so and how to redo it;
    one trained with the value that stayed loads as before."""
    with pytest.raises(InputError, match=r"trained with .*, (an option|which) this version removed .*retrain it"):
        ModelConfig.from_dict({**small().to_dict(), field: value})
    kept = {"temporal_pooling": "last", "normalize_std": [0.229, 0.224, 0.225], "inputs": ["appearance", "motion"]}
    assert ModelConfig.from_dict({**small().to_dict(), field: kept[field]}) == small()


def test_freeze_backbone_off_reads_as_every_block_fine_tuned():
    old = {**small().to_dict(), "freeze_backbone": False}
    assert ModelConfig.from_dict(old).fine_tune_blocks == 19
    assert ModelConfig.from_dict({**old, "freeze_backbone": True}).fine_tune_blocks == 0


def test_i3d_features_follow_mobilenet_s():
    """INPUTS "scene_video": 1024 I3D features, after MobileNetV2's, normalized on their own and reaching the
    output; a checkpoint from before I3D reads no video stream."""
    cfg = small(inputs=("appearance", "scene_video", "motion"))
    assert cfg.i3d and cfg.feature_dim == FEATURE_DIM + 1024 and cfg.feature_streams == ["appearance", "scene_video"]
    net = BehaviorNet(cfg, None).eval()
    features, vectors = torch.randn(2, 4, cfg.feature_dim), torch.randn(2, 4, MOTION_DIM)
    assert net.members[0].scene_video_norm.normalized_shape == (1024,)
    changed = features.clone()
    changed[..., FEATURE_DIM:] += torch.randn(2, 4, 1024)
    assert not torch.allclose(net(features, vectors), net(changed, vectors))
    video_only = small(inputs=("scene_video",))
    assert not video_only.appearance and BehaviorNet(video_only, None)(torch.randn(2, 4, 1024), None).shape == (2, 3)
    with pytest.raises(InputError, match="'scene_video' needs a frozen MobileNetV2"):
        small(inputs=("appearance", "scene_video"), fine_tune_blocks=2).validate()
    with pytest.raises(InputError, match="'scene_video' needs ENABLE_PERSON_TRACKING"):
        small(inputs=("scene_video",), person_tracking=False).validate()
    old = small().to_dict()
    for key in ("video_clip_length", "video_size", "video_sha256"):
        old.pop(key)
    assert not ModelConfig.from_dict(old).i3d


def test_checkpoints_made_before_the_streams_still_load():
    """A model_config written by an earlier version (use_motion, inputs "crops") loads as appearance + motion,
    and its state_dict keys are those of today's network."""
    old = small().to_dict()
    for key in ("pose_imgsz", "pose_sha256", "stream_norm", "ensemble_size"):
        old.pop(key)
    old.update(use_motion=True, inputs=["crops", "motion"])
    cfg = ModelConfig.from_dict(old)
    assert cfg.inputs == ("appearance", "motion") and not cfg.needs_keypoints
    old.update(use_motion=False, inputs=["crops"])
    assert ModelConfig.from_dict(old).inputs == ("appearance",)
    net = BehaviorNet(cfg, None)
    keys = set(net.state_dict())
    assert {"members.0.feature_norm.weight", "members.0.motion.0.weight", "members.0.lstm.weight_ih_l0",
            "members.0.head.0.weight"} <= keys
    assert not cfg.stream_norm and cfg.ensemble_size == 1 and not any("stream_norms." in k for k in keys)
    saved = {k.removeprefix("members.0."): v + 1 for k, v in net.state_dict().items()}  # as saved before the ensemble
    net.load_state_dict(saved)
    assert torch.equal(net.members[0].lstm.weight_ih_l0, saved["lstm.weight_ih_l0"])


def test_an_ensemble_averages_its_members_log_probabilities():
    torch.manual_seed(0)
    net = BehaviorNet(small(inputs=("motion", "pose"), ensemble_size=3), None).eval()
    vectors = torch.randn(2, 4, net.cfg.vector_dim)
    members = net(None, vectors, members=True)
    assert members.shape == (3, 2, 3)
    assert not torch.allclose(members[0], members[1])  # different initial weights
    combined = net(None, vectors).softmax(-1)
    geometric = members.log_softmax(-1).mean(0).exp()
    assert torch.allclose(combined, geometric / geometric.sum(-1, keepdim=True), atol=1e-6)
    one = BehaviorNet(small(inputs=("motion",), ensemble_size=1), None).eval()
    assert torch.equal(one(None, vectors[..., :MOTION_DIM]), one(None, vectors[..., :MOTION_DIM], members=True)[0])


def test_stream_norm_puts_every_stream_on_one_scale():
    """With STREAM_NORM, a stream's units do not matter in training (batch statistics), and the running
    statistics it learns are saved in the state_dict for prediction."""
    torch.manual_seed(0)
    cfg = small(inputs=("motion", "pose"), dropout=0.0, head_dropout=0.0)
    net = BehaviorNet(cfg, None).train()
    vectors = torch.randn(3, 4, cfg.vector_dim)
    rescaled = vectors * 10.0 + 3.0  # other units and origin, every channel alike
    assert torch.allclose(net(None, vectors), net(None, rescaled), atol=1e-4)
    assert "members.0.stream_norms.pose.running_mean" in net.state_dict()
    plain = BehaviorNet(small(inputs=("motion", "pose"), dropout=0.0, head_dropout=0.0, stream_norm=False), None)
    assert not torch.allclose(plain(None, vectors), plain(None, rescaled), atol=1e-4)


def test_stream_settings_are_checked():
    with pytest.raises(InputError, match="one or more of: appearance, scene_video, motion, pose"):
        ModelConfig.from_dict({**small().to_dict(), "inputs": ["appearance", "gait"]})
    with pytest.raises(InputError, match="ENABLE_PERSON_TRACKING"):
        small(inputs=("pose",), person_tracking=False).validate()
    with pytest.raises(InputError, match="needs 'appearance'"):
        small(inputs=("pose",), fine_tune_blocks=2).validate()
