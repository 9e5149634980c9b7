#!/usr/bin/env python
"""Stage 3: train MobileNetV2 + BiLSTM on the sequences of group_sequences.py.

Reads SEQUENCES_FILE (and the crops under FRAMES_DIR), writes MODEL_DIR: best_mobilenet_lstm.pth,
last.pth, history.csv, report.json, classification_report.txt, confusion_matrix.csv/.png and
curves.png. With the default frozen backbone each crop goes through MobileNetV2 once; its
features are cached under FEATURES_DIR for later runs.

Several processes: torchrun --nproc_per_node=N train_mobilenet_lstm.py [flags]

Exit codes: 0 trained and evaluated, 1 training failed (for example a NaN loss), 2 bad
arguments or input, 130 interrupted (continue with --resume).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import config
from behavior import cli, training


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.build_parser(__doc__, config)
    parser.add_argument("--resume", action="store_true", help="continue from MODEL_DIR/last.pth")
    parser.add_argument("--overwrite", action="store_true", help="replace a model already in MODEL_DIR")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(argv)
    cfg = cli.settings_from_args(args, config)
    cli.setup_logging(cfg["LOG_LEVEL"])
    training.train(cfg, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress)
    return cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(cli.run(main))
