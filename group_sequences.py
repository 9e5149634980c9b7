#!/usr/bin/env python
"""Stage 2: turn each person's crops into labeled fixed-length sequences, split by video.

Reads FRAMES_DIR (written by extract_frames.py) and writes SEQUENCES_FILE, classes.json and a
split x class table beside it. Only file names and the CSV/JSON files of stage 1 are read; no
image is decoded or copied. Every sequence of a video lands in the same split, and with
--groups-file or --group-pattern every video of one recording does too (groups.csv beside it).

Exit codes: 0 written (or already identical), 2 bad arguments or input, 130 interrupted.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import config
from behavior import cli, settings

FLAGS = (("Paths", ("FRAMES_DIR", "SEQUENCES_FILE")), settings.SequenceSettings, settings.SplitSettings,
         ("People you labeled (ANNOTATIONS_DIR): windows outside their labeled frame ranges", ("BACKGROUND_CLASS",)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.build_parser(__doc__, config, FLAGS)
    parser.add_argument("--split-file", type=Path, help="CSV with columns video,split to reproduce a given split")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing, different SEQUENCES_FILE")
    args = cli.parse(parser, argv)
    from behavior.group import sequences  # the stage after the arguments: --help answers before torch loads
    from behavior.io import files

    cfg = cli.settings_from_args(args, config)
    cli.setup_logging(args.log_level)

    out_file = Path(cfg["SEQUENCES_FILE"])
    files.ensure_writable(out_file.parent)
    settings = sequences.SequenceSettings.from_config(cfg)
    result = sequences.group_sequences(Path(cfg["FRAMES_DIR"]), settings, tuple(cfg["SPLIT_FRACTIONS"]),
                                       int(cfg["SEED"]), args.split_file, cfg["GROUPS_FILE"] or None,
                                       cfg["GROUP_PATTERN"])
    written = sequences.write_sequence_set(result, out_file, args.overwrite)
    print(result.table())
    if result.dropped:
        print("\n" + result.dropped_table())
    state = "written" if written else "unchanged (identical to the existing file)"
    print(f"\nsequences: {out_file} {state}; classes: {', '.join(result.classes)} "
          f"({out_file.with_name('classes.json')})")
    return cli.EXIT_OK


def run() -> int:
    """The console command: ``main`` with one-line errors and exit codes."""
    return cli.run(main)


if __name__ == "__main__":
    sys.exit(run())
