#!/usr/bin/env python
"""Stage 1: detect and track every person in the labeled videos and save their crops.

Reads CLIPS_DIR/<class>/*.mp4 (or CLIPS_DIR/<group>/<class>/*.mp4) and writes, per video,
FRAMES_DIR/[<group>/]<class>/<video>/person_<k>/frame_<n>.jpg with tracks.csv and meta.json,
then FRAMES_DIR/manifest.csv. Reruns skip finished videos; --overwrite redoes them.

Exit codes: 0 done (some videos may have failed: see the table), 1 no video could be
extracted or the disk is full or read-only (the batch stops), 2 bad arguments or input
(including changed settings without --overwrite), 130 interrupted.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import config
from behavior import cli, settings

log = logging.getLogger("extract_frames")

FLAGS = (("Paths", ("CLIPS_DIR", "FRAMES_DIR", "ANNOTATIONS_DIR")), settings.ExtractSettings, settings.DetectorSettings,
         ("What the model will read: stage 1 saves the scene images and objects its streams need",
          ("INPUTS", "OBJECT_CLASSES")), settings.Runtime)


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.build_parser(__doc__, config, FLAGS)
    parser.add_argument("--overwrite", action="store_true", help="redo videos that are already done")
    parser.add_argument("--shard", metavar="I/N", help="process only share I of N (0-based), for job arrays")
    parser.add_argument("--rebuild-manifest", action="store_true",
                        help="only rebuild FRAMES_DIR/manifest.csv from the meta.json files (after shards)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = cli.parse(parser, argv)
    from behavior.extract import extraction  # the stage after the arguments: --help answers before torch loads
    from behavior.io import clips, files, frames

    cfg = cli.settings_from_args(args, config)
    cli.setup_logging(args.log_level)
    frames_dir = Path(cfg["FRAMES_DIR"])

    if args.rebuild_manifest:
        frames.refuse_foreign_folder(frames_dir)
        with files.folder_lock(frames_dir, "FRAMES_DIR"):
            print(f"manifest: {frames.rebuild_manifest(frames_dir)}")
        return cli.EXIT_OK

    jobs = clips.find_videos(Path(cfg["CLIPS_DIR"]))
    if args.shard:
        index, count = extraction.parse_shard(args.shard)
        jobs = extraction.select_shard(jobs, index, count)
        log.info("shard %d/%d: %d videos", index, count, len(jobs))
    settings = extraction.ExtractSettings.from_config(cfg)
    results = extraction.extract_all(jobs, frames_dir, settings, args.overwrite, progress=not args.no_progress)

    print(extraction.summary_table(results))
    skipped = sum(r.status == frames.STATUS_SKIPPED for r in results)
    failed = [r for r in results if r.status == frames.STATUS_FAILED]
    scene = sum(r.scene_added for r in results)
    objects = sum(r.objects_added for r in results)
    print(f"\nframes: {frames_dir}  (manifest: {frames_dir / 'manifest.csv'}; "
          f"{len(results) - skipped - len(failed)} extracted, {skipped} already done, {len(failed)} failed"
          + (f"; scene images added to {scene} done before" if scene else "")
          + (f"; objects added to {objects} done before" if objects else "") + ")")
    for r in failed:
        print(f"failed: {r.job.path}: {r.error}")
    return cli.EXIT_FAILED if results and len(failed) == len(results) else cli.EXIT_OK


def run() -> int:
    """The console command: ``main`` with one-line errors and exit codes."""
    return cli.run(main)


if __name__ == "__main__":
    sys.exit(run())
