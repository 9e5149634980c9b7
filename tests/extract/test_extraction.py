import csv
import json
import logging
import shutil
from collections import Counter
from pathlib import Path

import cv2
import pytest

from behavior.detect.crops import crop_person
from behavior.errors import InputError
from behavior.extract import extraction
from behavior.extract.extraction import extract_all, identity_of, select_shard
from behavior.io.clips import VideoJob, find_videos
from behavior.io.frames import MANIFEST_HEADER, TRACKS_HEADER, iter_meta, read_objects
from behavior.settings import DetectorSettings, ExtractSettings

FAST = ExtractSettings(target_fps=8.0, frame_width=96, frame_height=96, min_track_frames=3,
                       detector=DetectorSettings(imgsz=320))


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def extracted(sample_clips, weights_dir, tmp_path_factory):
    frames = tmp_path_factory.mktemp("frames")
    results = extract_all(find_videos(sample_clips), frames, FAST, progress=False)
    return frames, results


def test_layouts_and_extensions(tmp_path, caplog):
    for rel in ("fight/a.mp4", "fight/B.MOV", "walk/c.webm", "grp/sit/d.AVI", "grp/run/e.mkv", "fight/notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "grp" / "nothing").mkdir()
    with caplog.at_level(logging.WARNING):
        jobs = find_videos(tmp_path)
    assert [(j.group, j.label, j.path.name) for j in jobs] == [
        ("", "fight", "B.MOV"), ("", "fight", "a.mp4"), ("grp", "run", "e.mkv"), ("grp", "sit", "d.AVI"),
        ("", "walk", "c.webm")]
    assert jobs[3].out_dir(Path("F")) == Path("F/grp/sit/d")
    assert "empty has no videos" in caplog.text and "nothing has no videos" in caplog.text


def test_missing_or_empty_clips_dir(tmp_path):
    with pytest.raises(InputError, match="not found"):
        find_videos(tmp_path / "nope")
    (tmp_path / "cls").mkdir()
    with pytest.raises(InputError, match="no videos found"):
        find_videos(tmp_path)


def test_shards_partition_the_videos():
    jobs = [VideoJob(Path(f"c{i % 3}/v{i}.mp4"), "", f"c{i % 3}") for i in range(50)]
    shards = [select_shard(jobs, i, 4) for i in range(4)]
    assert sorted(j.key for s in shards for j in s) == sorted(j.key for j in jobs)
    assert all(len(s) > 0 for s in shards)
    assert select_shard(jobs, 1, 4) == select_shard(list(reversed(jobs)), 1, 4)[::-1]
    with pytest.raises(InputError):
        extraction.parse_shard("4/4")


def test_output_layout(extracted, sample_clips):
    frames, results = extracted
    assert [r.status for r in results] == ["done"] * 4
    for r in results:
        out = r.job.out_dir(frames)
        meta = json.loads((out / "meta.json").read_text())
        for key in ("source", "size_bytes", "fps", "width", "height", "frame_count", "frames_kept", "settings",
                    "detector", "tracker", "status", "seconds"):
            assert key in meta, key
        assert meta["frame_count"] == 30 and meta["frames_kept"] == 12 and meta["fps"] == 20.0
        assert meta["size_bytes"] == r.job.path.stat().st_size
        persons = sorted(p.name for p in out.iterdir() if p.is_dir())
        assert persons == [f"person_{k}" for k in range(1, r.persons + 1)] and r.persons >= 1
        rows = read_csv(out / "tracks.csv")
        assert list(rows[0]) == list(TRACKS_HEADER)
        counts = Counter(row["person"] for row in rows)
        for p in persons:  # one crop per tracks.csv row, named by source frame index
            crops = sorted((out / p).glob("*.jpg"))
            k = p.split("_")[1]
            assert len(crops) == counts[k] >= FAST.min_track_frames
            names = {f"frame_{int(row['frame']):06d}.jpg" for row in rows if row["person"] == k}
            assert {c.name for c in crops} == names
            assert cv2.imread(str(crops[0])).shape == (96, 96, 3)
        ranked = [counts[p.split("_")[1]] for p in persons]
        assert ranked == sorted(ranked, reverse=True)  # person_1 has the most frames


def test_two_person_clip_has_two_people(extracted):
    frames, results = extracted
    two = next(r for r in results if r.job.stem == "standing_1")
    assert two.persons == 2


def test_manifest(extracted):
    frames, _ = extracted
    rows = read_csv(frames / "manifest.csv")
    assert list(rows[0]) == list(MANIFEST_HEADER)
    assert sorted((r["class"], r["video"], r["status"]) for r in rows) == [
        ("standing", "standing_0", "done"), ("standing", "standing_1", "done"),
        ("walking", "walking_0", "done"), ("walking", "walking_1", "done")]


def test_rerun_skips_and_changed_settings_need_overwrite(extracted, sample_clips):
    frames, _ = extracted
    jobs = find_videos(sample_clips)
    again = extract_all(jobs, frames, FAST, progress=False)
    assert [r.status for r in again] == ["skipped"] * 4
    assert [r.persons for r in again] == [r.persons for r in extracted[1]]
    one = [jobs[0]]
    folder = one[0].out_dir(frames)
    before = sorted(p.relative_to(folder) for p in folder.rglob("*.jpg"))
    changed = ExtractSettings(**{**FAST.__dict__, "target_fps": 4.0})
    with pytest.raises(InputError, match=r"extracted with other settings .*target_fps 8.0 -> 4.0.*--overwrite"):
        extract_all(one, frames, changed, progress=False)
    assert sorted(p.relative_to(folder) for p in folder.rglob("*.jpg")) == before  # nothing was touched
    assert extract_all(one, frames, changed, overwrite=True, progress=False)[0].status == "done"
    assert extract_all(one, frames, changed, progress=False)[0].status == "skipped"
    extract_all(one, frames, FAST, overwrite=True, progress=False)  # restore for the other tests


def test_a_video_whose_meta_json_is_corrupt_is_extracted_again(sample_clips, weights_dir, tmp_path, caplog):
    frames = tmp_path / "f"
    job = find_videos(sample_clips)[0]
    extract_all([job], frames, FAST, progress=False)
    (job.out_dir(frames) / "meta.json").write_text("{")
    with caplog.at_level(logging.WARNING):
        [again] = extract_all([job], frames, FAST, progress=False)
    assert again.status == "done"
    assert f"{job.key}: its meta.json cannot be read: extracting the video again" in caplog.text
    assert json.loads((job.out_dir(frames) / "meta.json").read_text())["status"] == "done"


def test_bad_video_fails_and_batch_goes_on(sample_clips, weights_dir, tmp_path):
    clips = tmp_path / "clips"
    shutil.copytree(sample_clips / "walking", clips / "walking")
    (clips / "walking" / "bad.mp4").write_bytes(b"\x00" * 1024)
    (clips / "walking" / "empty.mp4").write_bytes(b"")
    results = {r.job.stem: r for r in extract_all(find_videos(clips), tmp_path / "f", FAST, progress=False)}
    assert results["bad"].status == "failed" and "cannot open video" in results["bad"].error
    assert results["empty"].status == "failed" and "empty" in results["empty"].error
    assert results["walking_0"].status == "done" and results["walking_1"].status == "done"
    meta = json.loads((tmp_path / "f" / "walking" / "bad" / "meta.json").read_text())
    assert meta["status"] == "failed" and meta["error"] == results["bad"].error
    manifest = {r["video"]: r for r in read_csv(tmp_path / "f" / "manifest.csv")}
    assert manifest["bad"]["status"] == "failed" and manifest["bad"]["error"]
    # a failed video is retried by the next run; a done one is not
    rerun = {r.job.stem: r.status for r in extract_all(find_videos(clips), tmp_path / "f", FAST, progress=False)}
    assert rerun == {"bad": "failed", "empty": "failed", "walking_0": "skipped", "walking_1": "skipped"}


def test_interrupted_staging_is_never_mistaken_for_done(sample_clips, weights_dir, tmp_path):
    frames = tmp_path / "f"
    job = find_videos(sample_clips)[0]
    staging = job.out_dir(frames).with_name(f".{job.stem}.tmp")
    (staging / "person_1").mkdir(parents=True)
    (staging / "meta.json").write_text(json.dumps({"status": "done"}))
    assert list(iter_meta(frames)) == []
    result = extract_all([job], frames, FAST, progress=False)[0]
    assert result.status == "done" and not staging.exists()


def test_interruption_mid_video_leaves_nothing_done(sample_clips, weights_dir, tmp_path, monkeypatch):
    frames = tmp_path / "f"
    job = find_videos(sample_clips)[0]

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(extraction, "_rank_tracks", interrupt)
    with pytest.raises(KeyboardInterrupt):
        extract_all([job], frames, FAST, progress=False)
    assert not job.out_dir(frames).exists()
    assert not any(p.name.endswith(".tmp") for p in job.out_dir(frames).parent.iterdir())


def test_ctrl_c_mid_video_stops_at_the_next_frame(sample_clips, weights_dir, tmp_path, monkeypatch):
    """A real SIGINT while a crop is cut: the frame loop stops cleanly, nothing is kept, Ctrl-C is Python's again."""
    import signal

    frames = tmp_path / "f"
    job = find_videos(sample_clips)[0]
    cuts = []

    def crop_then_press(*args, **kwargs):
        cuts.append(1)
        if len(cuts) == 3:
            signal.raise_signal(signal.SIGINT)
            cuts.append("the crop in hand went on")
        return crop_person(*args, **kwargs)

    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        monkeypatch.setattr(extraction, "crop_person", crop_then_press)
        with pytest.raises(KeyboardInterrupt):
            extract_all([job], frames, FAST, progress=False)
        assert "the crop in hand went on" in cuts and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)
    assert not job.out_dir(frames).exists()
    assert not any(p.name.endswith(".tmp") for p in job.out_dir(frames).parent.iterdir())


def test_whole_frame_mode(sample_clips, tmp_path):
    settings = ExtractSettings(**{**FAST.__dict__, "person_tracking": False, "frame_width": 80, "frame_height": 60})
    job = find_videos(sample_clips)[0]
    result = extract_all([job], tmp_path, settings, progress=False)[0]
    out = job.out_dir(tmp_path)
    assert result.persons == 1 and sorted(p.name for p in out.iterdir() if p.is_dir()) == ["person_1"]
    rows = read_csv(out / "tracks.csv")
    assert len(rows) == 12 and rows[0]["x2"] == "320.0" and rows[0]["y2"] == "240.0"
    assert cv2.imread(str(next((out / "person_1").glob("*.jpg")))).shape == (60, 80, 3)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["detector"] is None and meta["settings"]["person_tracking"] is False


def test_scene_images_are_saved_or_added_without_tracking_again(sample_clips, weights_dir, tmp_path, monkeypatch):
    """INPUTS "scene_video": every kept frame whole beside the people. A video finished without them gets them on the
    next run, decoded again but not tracked again, and they are the images a fresh extraction saves."""
    with_scene = ExtractSettings(**{**FAST.__dict__, "scene": True})
    assert identity_of(with_scene) == identity_of(FAST)  # not a change of settings: nothing to --overwrite
    job = find_videos(sample_clips)[0]
    extract_all([job], tmp_path / "fresh", with_scene, progress=False)
    fresh = job.out_dir(tmp_path / "fresh")
    extract_all([job], tmp_path / "old", FAST, progress=False)
    old = job.out_dir(tmp_path / "old")
    assert not (old / "scene").exists() and "scene" not in json.loads((old / "meta.json").read_text())
    tracks = (old / "tracks.csv").read_bytes()

    def no_tracking(*args, **kwargs):
        raise AssertionError("adding scene images must not track again")

    monkeypatch.setattr(extraction, "PersonTracker", no_tracking)
    result = extract_all([job], tmp_path / "old", with_scene, progress=False)[0]
    assert result.status == "skipped" and result.scene_added
    assert not extract_all([job], tmp_path / "old", with_scene, progress=False)[0].scene_added  # once
    meta = json.loads((old / "meta.json").read_text())
    assert meta["scene"] is True and (old / "tracks.csv").read_bytes() == tracks
    names = sorted(p.name for p in (old / "scene").iterdir())
    assert len(names) == meta["frames_kept"] == 12 and names == sorted(p.name for p in (fresh / "scene").iterdir())
    a, b = cv2.imread(str(old / "scene" / names[5])), cv2.imread(str(fresh / "scene" / names[5]))
    assert a.shape == (96, 96, 3) and (a == b).all()
    assert not any(p.name.startswith(".") for p in old.iterdir())  # no staging left behind


def test_objects_are_saved_or_added_without_touching_the_people(objects_clip, weights_dir, tmp_path):
    """INPUTS "objects": objects.csv beside tracks.csv from the same detector calls; a video finished without them
    gets them on the next run, its people untouched, and they are the objects a fresh extraction saves."""
    every = ExtractSettings(**{**FAST.__dict__, "target_fps": 0.0, "detector": DetectorSettings(imgsz=640)})
    with_objects = ExtractSettings(**{**every.__dict__, "objects": ("handbag", "chair")})
    assert identity_of(with_objects) == identity_of(every)  # not a change of settings: nothing to --overwrite
    job = find_videos(objects_clip)[0]
    extract_all([job], tmp_path / "fresh", with_objects, progress=False)
    fresh = job.out_dir(tmp_path / "fresh")
    rows = read_csv(fresh / "objects.csv")
    assert rows and {r["class"] for r in rows} == {"handbag", "chair"}
    assert {int(r["frame"]) for r in rows} <= {int(r["frame"]) for r in read_csv(fresh / "tracks.csv")}
    assert json.loads((fresh / "meta.json").read_text())["objects"] == ["handbag", "chair"]

    extract_all([job], tmp_path / "old", every, progress=False)
    old = job.out_dir(tmp_path / "old")
    assert not (old / "objects.csv").exists()
    tracks = (old / "tracks.csv").read_bytes()
    assert tracks == (fresh / "tracks.csv").read_bytes()  # the objects leave the people as they were
    with pytest.raises(InputError, match="extracted with no objects"):
        read_objects(old, ("chair",))
    result = extract_all([job], tmp_path / "old", with_objects, progress=False)[0]
    assert result.status == "skipped" and result.objects_added
    assert not extract_all([job], tmp_path / "old", with_objects, progress=False)[0].objects_added  # once
    assert (old / "tracks.csv").read_bytes() == tracks
    assert (old / "objects.csv").read_bytes() == (fresh / "objects.csv").read_bytes()
    assert {o.name for found in read_objects(old, ("chair",)).values() for o in found} == {"handbag", "chair"}
    with pytest.raises(InputError, match="extracted with no cup"):
        read_objects(old, ("cup", "chair"))


@pytest.fixture(scope="module")
def empty_scene(tmp_path_factory):
    """A class folder with one clip in which nobody appears."""
    from tools.synthetic import ClipSpec, write_clip

    clips = tmp_path_factory.mktemp("empty_scene")
    write_clip(clips / "fighting" / "nobody.mp4", ClipSpec(persons=0, width=320, height=240, fps=20.0,
                                                             seconds=1.5))
    return clips


def test_nobody_tracked_the_whole_frame_stands_in(empty_scene, weights_dir, tmp_path):
    result = extract_all(find_videos(empty_scene), tmp_path, FAST, progress=False)[0]
    out = result.job.out_dir(tmp_path)
    assert result.status == "done" and result.persons == 0 and result.whole_frame
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["person_0"]
    rows = read_csv(out / "tracks.csv")
    assert len(rows) == 12 and {r["track_id"] for r in rows} == {"0"} and {r["person"] for r in rows} == {"0"}
    assert (rows[0]["x1"], rows[0]["y1"], rows[0]["x2"], rows[0]["y2"]) == ("0.0", "0.0", "320.0", "240.0")
    crops = sorted((out / "person_0").glob("*.jpg"))
    assert [c.name for c in crops] == [f"frame_{int(r['frame']):06d}.jpg" for r in rows]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["whole_frame"] is True and meta["persons"][0]["whole_frame"] is True
    assert read_csv(tmp_path / "manifest.csv")[0]["persons"] == "0"
    assert extraction.summary_table([result]).splitlines()[-1].split() == ["TOTAL", "1", "0", "0", "1"]
    # an extraction made before the stand-in existed (done, nobody) is redone without --overwrite
    meta.update(persons=[])
    del meta["whole_frame"]
    (out / "meta.json").write_text(json.dumps(meta))
    shutil.rmtree(out / "person_0")
    again = extract_all(find_videos(empty_scene), tmp_path, FAST, progress=False)[0]
    assert again.status == "done" and again.whole_frame and (out / "person_0").is_dir()
    assert extract_all(find_videos(empty_scene), tmp_path, FAST, progress=False)[0].status == "skipped"


def test_summary_table(extracted):
    table = extraction.summary_table(extracted[1])
    lines = table.splitlines()
    assert lines[0].split()[:4] == ["class", "videos", "failed", "persons"] and "whole frame" in lines[0]
    assert lines[-1].split()[:3] == ["TOTAL", "4", "0"]
    assert int(lines[-1].split()[3]) == sum(r.persons for r in extracted[1])


def test_invalid_settings(tmp_path):
    with pytest.raises(InputError, match="YOLO_CONF_THRESHOLD"):
        extract_all([], tmp_path, ExtractSettings(detector=DetectorSettings(conf=1.5)), progress=False)
