import dataclasses
import os

import torch

from behavior.features.appearance import FeatureCache, backbone_key, crops_to_tensor, read_crop
from behavior.io.weights import resolve_weights
from behavior.model.network import BehaviorNet, ModelConfig, load_backbone


def make_net(weights):
    cfg = ModelConfig(num_classes=2, frame_width=32, frame_height=32, hidden_dim=8, head_hidden_dim=8,
                      inputs=("appearance", "motion"), cnn_input="rgb")
    return BehaviorNet(cfg, load_backbone(weights)), cfg


def test_cache_hits_misses_and_invalidation(small_sequences, weights_dir, tmp_path):
    frames, _ = small_sequences
    weights = resolve_weights("mobilenet_v2_imagenet.pth")
    net, cfg = make_net(weights)
    dirs = ["fight/fight_00000/person_1", "walk/walk_00000/person_1"]
    cache = FeatureCache(tmp_path, backbone_key(weights, cfg))

    first = cache.load(frames, dirs, net, progress=False)
    assert (first.hits, first.misses, first.computed) == (0, 2, 24)
    assert first.plain.shape == (24, 1280) and first.plain.dtype == torch.float16
    path = "fight/fight_00000/person_1/frame_000000.jpg"
    expected = net.eval().embed(crops_to_tensor([read_crop(frames / path, (32, 32))]))[0]
    assert torch.allclose(first.plain[first.index[path]].float(), expected, atol=2e-2, rtol=1e-2)
    assert not torch.equal(first.plain, first.flipped)

    second = cache.load(frames, dirs, None, progress=False)  # no network needed: all hits
    assert (second.hits, second.misses) == (2, 0)
    assert torch.equal(second.plain, first.plain) and second.index == first.index

    crop = frames / path
    stat = crop.stat()
    os.utime(crop, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # the crop changed
    third = cache.load(frames, dirs, net, progress=False)
    assert (third.hits, third.misses, third.computed) == (1, 1, 12)

    changed = tmp_path / "other.pth"
    state = torch.load(weights, weights_only=True)
    state["classifier.1.bias"] = state["classifier.1.bias"] + 1
    torch.save(state, changed)
    assert backbone_key(changed, cfg) != backbone_key(weights, cfg)
    assert backbone_key(weights, dataclasses.replace(cfg, cnn_input="difference")) != backbone_key(weights, cfg)
    other = FeatureCache(tmp_path, backbone_key(changed, cfg)).load(frames, dirs, net, progress=False)
    assert other.misses == 2


def test_an_interrupted_feature_pass_keeps_what_it_finished(small_sequences, weights_dir, tmp_path, monkeypatch):
    """Ctrl-C during the feature pass: folders already computed are on disk, and a rerun computes only the rest."""
    import pytest
    from conftest import ctrl_c_on_call

    from behavior.features import appearance

    frames, _ = small_sequences
    weights = resolve_weights("mobilenet_v2_imagenet.pth")
    net, cfg = make_net(weights)
    dirs = [f"{c}/{c}_0000{i}/person_1" for c in ("fight", "walk") for i in range(2)]  # 4 folders of 12 crops
    cache = FeatureCache(tmp_path, backbone_key(weights, cfg))
    real = appearance.embed_images
    monkeypatch.setattr(appearance, "embed_images", ctrl_c_on_call(real, 3))  # in the third batch
    with pytest.raises(KeyboardInterrupt):
        cache.load(frames, dirs, net, batch_size=12, progress=False)
    assert sorted(p.relative_to(cache.folder).as_posix() for p in cache.folder.rglob("*.npz")) == [
        f"{d}.npz" for d in sorted(dirs)[:2]]
    monkeypatch.setattr(appearance, "embed_images", real)
    resumed = cache.load(frames, dirs, net, batch_size=12, progress=False)
    assert (resumed.hits, resumed.misses, resumed.computed) == (2, 2, 24)
