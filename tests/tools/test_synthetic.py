import numpy as np
import pytest

from tools.synthetic import MOTIONS, ClipSpec, generate_dataset, person_cutouts, render_clip


def test_same_seed_same_frames():
    spec = ClipSpec(width=160, height=120, fps=10.0, seconds=0.5, seed=7, persons=2)
    a, b = list(render_clip(spec)), list(render_clip(spec))
    assert len(a) == 5 and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    c = list(render_clip(ClipSpec(width=160, height=120, fps=10.0, seconds=0.5, seed=8, persons=2)))
    assert not np.array_equal(a[0], c[0])


def test_cutouts_are_real_photos():
    cutouts = person_cutouts()
    assert len(cutouts) >= 3 and all(c.shape[0] > 300 and c.std() > 20 for c in cutouts)


@pytest.mark.parametrize("motion", MOTIONS)
def test_motions_move_differently(motion):
    frames = list(render_clip(ClipSpec(motion=motion, width=160, height=120, fps=10.0, seconds=1.0, seed=1)))
    change = np.mean([np.abs(frames[i + 1].astype(int) - frames[i]).mean() for i in range(len(frames) - 1)])
    if motion == "standing":
        assert change < 1.0
    else:
        assert change > 1.0


def test_unknown_motion():
    with pytest.raises(ValueError, match="unknown motion"):
        next(render_clip(ClipSpec(motion="flying")))


def test_dataset_layout(tmp_path):
    paths = generate_dataset(tmp_path, videos_per_class=1, motions=("walking", "jumping"), seconds=0.3)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == ["walking/walking_000.mp4", "jumping/jumping_000.mp4"]
    mtime = paths[0].stat().st_mtime_ns
    generate_dataset(tmp_path, videos_per_class=1, motions=("walking", "jumping"), seconds=0.3)
    assert paths[0].stat().st_mtime_ns == mtime  # kept, not regenerated
