#!/usr/bin/env python
"""Stage 3 speed: an epoch on cached features against an epoch that reruns MobileNetV2.

Same sequences, same model, same optimizer settings, in one process. "cached" gathers each
crop's features from the on-disk cache (filled once, before timing); "recompute" decodes every
crop and runs the frozen MobileNetV2 on it in every epoch, as a pipeline without the cache
would. Prints the steady-state seconds per epoch of each (epochs after the first; median) and
their ratio (target: at least 20 on the 2-core CPU).

    python benchmarks/train_speed.py                                  # generated 224x224 crops
    python benchmarks/train_speed.py --sequences-file datasets/sequences/sequences.csv --frames-dir datasets/frames
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from torch.utils.data import DataLoader

import config
from behavior import cli
from behavior.data.datasets import CachedSequenceDataset, ImageSequenceDataset, load_vectors
from behavior.features.appearance import FeatureCache, backbone_key
from behavior.group.sequences import group_sequences, write_sequence_set
from behavior.io.sequence_file import read_sequences
from behavior.io.weights import resolve_weights
from behavior.model.network import BehaviorNet, load_backbone
from behavior.report import format_table
from behavior.runtime import environment, hardware
from behavior.settings import SequenceSettings, TrainConfig
from behavior.train.distributed import make_scaler, seed_everything
from behavior.train.engine import make_optimizer, train_one_epoch
from behavior.train.losses import class_weights
from behavior.train.setup import model_config_from
from tools.synthetic import write_frames_tree

ROOT = Path(__file__).resolve().parents[1]




def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequences-file", type=Path, help="real sequences (default: a generated set)")
    parser.add_argument("--frames-dir", type=Path, help="the crops those sequences point to")
    parser.add_argument("--sequences", type=int, default=64, help="training sequences to time (first N)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per mode; the first is not counted")
    args = parser.parse_args()
    cli.setup_logging("WARNING")
    cfg = {**cli.config_constants(config), "INPUTS": ("appearance", "motion")}  # the CNN's cost is what is timed
    device = hardware.resolve_device(cfg["DEVICE"])
    threads = hardware.set_threads(cfg["TORCH_THREADS"])

    with tempfile.TemporaryDirectory() as tmp:
        frames, sequences = args.frames_dir, args.sequences_file
        if sequences is None:
            frames, sequences = Path(tmp) / "frames", Path(tmp) / "seq" / "sequences.csv"
            write_frames_tree(frames, videos_per_class=12, persons_per_video=1, frames_per_person=32,
                              image_size=cfg["FRAME_WIDTH"])
            write_sequence_set(group_sequences(frames, SequenceSettings.from_config(cfg), seed=0), sequences)
        table = read_sequences(sequences)
        rows = table.select("train")[: args.sequences]
        train_config = TrainConfig.from_config(cfg)
        model_config = model_config_from(cfg, table, frames)
        weights = resolve_weights(train_config.backbone_weights)
        motion = load_vectors(frames, table.person_dirs(rows), model_config.inputs)
        loss_weights = class_weights([table.labels[i] for i in rows], model_config.num_classes)

        seed_everything(0)
        net = BehaviorNet(model_config, load_backbone(weights)).to(device)
        cache = FeatureCache(Path(tmp) / "features", backbone_key(weights, model_config))
        start = time.perf_counter()
        store = cache.load(frames, table.person_dirs(rows), net, device, train_config.feature_batch_size,
                           progress=False)
        fill = time.perf_counter() - start
        loaders = {
            "cached": DataLoader(CachedSequenceDataset(table, rows, store, motion, model_config.inputs,
                                                       train_config.augment),
                                 batch_size=train_config.batch_size, shuffle=True),
            "recompute": DataLoader(ImageSequenceDataset(table, rows, frames, (model_config.frame_width,
                                                                               model_config.frame_height),
                                                         motion, model_config.inputs, augment=False),
                                    batch_size=train_config.batch_size, shuffle=True,
                                    num_workers=train_config.num_workers),
        }
        seconds: dict[str, list[float]] = {}
        for name, loader in loaders.items():
            seed_everything(0)
            net = BehaviorNet(model_config, load_backbone(weights)).to(device)
            optimizer = make_optimizer(net, train_config)
            scaler = make_scaler(device)
            seconds[name] = []
            for epoch in range(1, args.epochs + 1):
                start = time.perf_counter()
                train_one_epoch(net, loader, optimizer, scaler, loss_weights.to(device), train_config, device, epoch,
                                False)
                seconds[name].append(time.perf_counter() - start)

    steady = {name: statistics.median(s[1:] or s) for name, s in seconds.items()}
    size = f"{model_config.frame_width}x{model_config.frame_height}"
    print(f"{len(rows)} training sequences of {table.sequence_length} frames ({size}); "
          f"device: {device}; threads: {threads}; cache filled once in {fill:.1f} s ({store.computed} crops)")
    print(format_table(["mode", "first epoch s", "steady s/epoch"],
                       [[name, s[0], steady[name]] for name, s in seconds.items()]))
    ratio = steady["recompute"] / steady["cached"]
    print(f"speed-up of the feature cache (steady state): {ratio:.1f}x   target >= 20: "
          f"{'met' if ratio >= 20 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    environment.setup()  # offline Ultralytics, the torchvision fix
    raise SystemExit(main())
