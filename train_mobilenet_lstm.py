#!/usr/bin/env python
"""Stage 3: train MobileNetV2 + BiLSTM on the sequences of group_sequences.py.

Reads SEQUENCES_FILE (and the crops under FRAMES_DIR), writes MODEL_DIR: best_mobilenet_lstm.pth,
last.pth, history.csv, report.json, classification_report.txt, confusion_matrix.csv/.png and
curves.png. With the default frozen backbone each crop goes through MobileNetV2 once; its
features are cached under FEATURES_DIR for later runs.

Several processes: torchrun --nproc_per_node=N train_mobilenet_lstm.py [flags]

Cross-validation instead of training: train_mobilenet_lstm.py --cv 5 deals the train and val videos
into 5 folds by recording group (GROUPS_FILE, GROUP_PATTERN, or stage 2's groups.csv), trains on
each 4 and scores the fifth; MODEL_DIR/cv gets every fold's model, cv_report.json (per fold, mean
± std) and the confusion matrix summed over folds. The test split is never read.

Exit codes: 0 trained and evaluated, 1 training failed (for example a NaN loss), 2 bad
arguments or input, 130 interrupted (continue with --resume).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import config
from behavior import cli, settings

FLAGS = (("Paths", ("FRAMES_DIR", "SEQUENCES_FILE", "FEATURES_DIR", "MODEL_DIR")), settings.Weights,
         settings.ModelSettings, settings.TrainConfig, settings.SplitSettings, settings.Runtime)


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.build_parser(__doc__, config, FLAGS)
    parser.add_argument("--resume", action="store_true", help="continue from MODEL_DIR/last.pth")
    parser.add_argument("--overwrite", action="store_true", help="replace a model already in MODEL_DIR")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--cv", type=int, default=0, metavar="K",
                        help="instead of training: grouped K-fold cross-validation on the train and val videos, "
                             "into MODEL_DIR/cv (the test split is never read; a rerun reuses finished folds)")
    args = cli.parse(parser, argv)
    from behavior.train import crossval, training  # the stage after the arguments: --help answers before torch loads

    cfg = cli.settings_from_args(args, config)
    cli.setup_logging(args.log_level)
    if args.cv:
        if args.resume:
            parser.error("--cv reuses finished folds by itself; it takes no --resume")
        crossval.cross_validate(cfg, args.cv, overwrite=args.overwrite, progress=not args.no_progress)
        return cli.EXIT_OK
    training.train(cfg, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress)
    return cli.EXIT_OK


def run() -> int:
    """The console command: ``main`` with one-line errors and exit codes."""
    return cli.run(main)


if __name__ == "__main__":
    sys.exit(run())
