"""Procedural motion clips: determinism, ranges, true motion, buckets, batch layout, data module."""
import math
import time

import pytest
import torch
from omegaconf import OmegaConf

from sgm.data.synthetic_motion import (
    MOTION_PER_SPEED,
    SyntheticMotionClips,
    SyntheticMotionDataModule,
    collate_video,
    max_motion_for,
    motion_bucket,
    render_clip,
)
from sgm.util import instantiate_from_config

T, SIZE = 8, 64


@pytest.fixture(scope="module")
def clips():
    """The first 240 default clips (seeds 0..239), rendered once."""
    return [render_clip(seed) for seed in range(240)]


def test_render_is_deterministic_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a = render_clip(17)
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.manual_seed(12345)
    b = render_clip(17)
    assert torch.equal(a["frames"], b["frames"])
    assert (a["motion"], a["speed"], a["pan"]) == (b["motion"], b["speed"], b["pan"])
    assert not torch.equal(a["frames"], render_clip(18)["frames"])


def test_shapes_ranges_and_types(clips):
    for clip in clips[:40]:
        frames = clip["frames"]
        assert frames.shape == (T, 3, SIZE, SIZE) and frames.dtype == torch.float32
        assert frames.min() >= -1.0 and frames.max() <= 1.0
        assert isinstance(clip["motion"], float) and clip["motion"] >= 0.0
        assert 0.0 <= clip["speed"] <= 4.0
        px, py = clip["pan"]
        assert math.hypot(px, py) <= 2.0 + 1e-9
    other = render_clip(3, num_frames=5, size=40)
    assert other["frames"].shape == (5, 3, 40, 40)


def test_static_clips_have_zero_motion(clips):
    static = [c for c in clips if c["speed"] == 0.0]
    assert 10 <= len(static) <= 45  # ~10 % of 240
    for clip in static:
        assert clip["motion"] == 0.0 and clip["pan"] == (0.0, 0.0)
        frames = clip["frames"]
        assert (frames[1:] - frames[:-1]).abs().max() == 0.0


def test_pan_fraction_and_pan_dominates_mean_motion(clips):
    panning = [c for c in clips if c["pan"] != (0.0, 0.0)]
    assert 0.15 * len(clips) <= len(panning) <= 0.45 * len(clips)  # pan_prob 0.3 of the moving clips
    for clip in panning:
        pan = math.hypot(*clip["pan"])
        # background moves with the pan; shapes (< 30 % of the image) at most speed + pan
        assert 0.7 * pan - 1e-6 <= clip["motion"] <= pan + 0.3 * clip["speed"] + 1e-6
    assert all(render_clip(s, pan_prob=0.0)["pan"] == (0.0, 0.0) for s in range(30))


def test_faster_clips_move_more():
    no_pan = [render_clip(s, pan_prob=0.0) for s in range(150)]
    slow = [c["motion"] for c in no_pan if 0 < c["speed"] < 1.5]
    fast = [c["motion"] for c in no_pan if c["speed"] > 2.5]
    assert slow and fast
    assert sum(fast) / len(fast) > 2.0 * sum(slow) / len(slow)
    # and a larger max_speed gives more motion on average
    low = sum(render_clip(s, max_speed=2.0)["motion"] for s in range(60))
    high = sum(render_clip(s, max_speed=6.0)["motion"] for s in range(60))
    assert high > 2.0 * low


def test_frames_change_only_where_things_move(clips):
    moving = next(c for c in clips if c["speed"] > 1.0 and c["pan"] == (0.0, 0.0))
    diff = (moving["frames"][1:] - moving["frames"][:-1]).abs().amax(dim=1)  # (T-1, H, W)
    changed = (diff > 1e-6).float().mean()
    assert 0.0 < changed < 0.35  # only the shapes' neighbourhoods change without a pan


def test_motion_bucket_mapping(clips):
    m = max_motion_for(4.0)
    assert m == pytest.approx(MOTION_PER_SPEED * 4.0)
    assert motion_bucket(0.0, m) == 0
    assert motion_bucket(-1.0, m) == 0
    assert motion_bucket(m, m) == 255
    assert motion_bucket(3 * m, m) == 255
    assert motion_bucket(0.25 * m, m) == 64  # round(63.75)
    assert motion_bucket(0.5 * m, m) == round(127.5)
    with pytest.raises(ValueError):
        motion_bucket(1.0, 0.0)
    buckets = [motion_bucket(c["motion"], m) for c in clips]
    assert min(buckets) == 0 and max(buckets) > 200  # the range is used in practice
    assert max(c["motion"] for c in clips) <= 1.2 * m


def test_dataset_items_deterministic_and_well_formed():
    ds = SyntheticMotionClips(10, seed=3)
    late = ds[7]
    torch.manual_seed(999)
    first = [ds[i] for i in range(10)]
    again = SyntheticMotionClips(10, seed=3)[7]
    for key in late:
        assert torch.equal(late[key], first[7][key]) and torch.equal(late[key], again[key])
    assert torch.equal(ds[-1]["frames"], first[9]["frames"])
    with pytest.raises(IndexError):
        ds[10]
    # item i is render_clip(seed * 1_000_003 + i)
    assert torch.equal(late["frames"], render_clip(3 * 1_000_003 + 7)["frames"])
    assert not torch.equal(SyntheticMotionClips(10, seed=4)[7]["frames"], late["frames"])

    item = first[0]
    assert item["frames"].shape == (T, 3, SIZE, SIZE)
    assert item["cond_frames"].shape == item["cond_frames_without_noise"].shape == (3, SIZE, SIZE)
    assert torch.equal(item["cond_frames_without_noise"], item["frames"][0])
    for key, dtype in [("motion_bucket_id", torch.int64), ("fps_id", torch.int64), ("cond_aug", torch.float32), ("motion", torch.float32)]:
        assert item[key].shape == () and item[key].dtype == dtype
    assert int(item["fps_id"]) == 6
    for it in first:
        assert int(it["motion_bucket_id"]) == motion_bucket(float(it["motion"]), max_motion_for(4.0))


def test_cond_frames_noise_matches_cond_aug():
    ds = SyntheticMotionClips(60, seed=0, cond_aug_mean=-3.0, cond_aug_std=0.5)
    logs = []
    for i in range(60):
        item = ds[i]
        aug = float(item["cond_aug"])
        noise = item["cond_frames"] - item["cond_frames_without_noise"]
        assert noise.std().item() == pytest.approx(aug, rel=0.05)
        assert noise.mean().abs().item() < 0.05 * aug
        logs.append(math.log(aug))
    mean = sum(logs) / len(logs)
    std = math.sqrt(sum((x - mean) ** 2 for x in logs) / (len(logs) - 1))
    assert mean == pytest.approx(-3.0, abs=0.25)
    assert std == pytest.approx(0.5, abs=0.15)


def test_collate_video_layout():
    ds = SyntheticMotionClips(3, num_frames=5, size=32, seed=1)
    items = [ds[i] for i in range(3)]
    batch = collate_video(items)
    b, t = 3, 5
    assert batch["jpg"].shape == (b * t, 3, 32, 32)
    for i, item in enumerate(items):
        assert torch.equal(batch["jpg"][i * t : i * t + t], item["frames"])
        assert torch.equal(batch["cond_frames"][i], item["cond_frames"])
        assert torch.equal(batch["cond_frames_without_noise"][i], item["cond_frames_without_noise"])
        for key in ("motion_bucket_id", "fps_id", "cond_aug"):
            assert torch.equal(batch[key][i * t : i * t + t], item[key].expand(t))
    assert batch["motion_bucket_id"].dtype == batch["fps_id"].dtype == torch.int64
    assert batch["cond_aug"].dtype == torch.float32 and batch["cond_aug"].shape == (b * t,)
    assert batch["num_video_frames"] == t and type(batch["num_video_frames"]) is int
    assert torch.equal(batch["image_only_indicator"], torch.zeros(b, t))
    assert batch["motion"].shape == (b,) and batch["motion"].dtype == torch.float32
    assert torch.equal(batch["motion"], torch.stack([it["motion"] for it in items]))


def test_datamodule_from_yaml_yields_batches():
    config = OmegaConf.create(
        """
        target: sgm.data.synthetic_motion.SyntheticMotionDataModule
        params:
          batch_size: 2
          train_clips: 6
          val_clips: 4
          num_frames: 4
          size: 32
          seed: 5
        """
    )
    dm = instantiate_from_config(config)
    assert isinstance(dm, SyntheticMotionDataModule)
    dm.setup("fit")
    train = list(dm.train_dataloader())
    val = list(dm.val_dataloader())
    assert len(train) == 3 and len(val) == 2
    assert train[0]["jpg"].shape == (8, 3, 32, 32) and train[0]["num_video_frames"] == 4
    # validation keeps its order and is the held-out seed
    assert torch.equal(val[0]["jpg"][:4], SyntheticMotionClips(4, num_frames=4, size=32, seed=6)[0]["frames"])
    train_frames = torch.cat([b["jpg"] for b in train]).view(6, 4, 3, 32, 32)
    val_frames = torch.cat([b["jpg"] for b in val]).view(4, 4, 3, 32, 32)
    assert all(not torch.equal(v, tr) for v in val_frames for tr in train_frames)
    # training order is shuffled reproducibly: a fresh module gives the same first epoch
    again = instantiate_from_config(config)
    assert torch.equal(torch.cat([b["jpg"] for b in again.train_dataloader()]), torch.cat([b["jpg"] for b in train]))
    in_order = torch.stack([dm.train_dataset[i]["frames"] for i in range(6)])
    assert not torch.equal(train_frames, in_order)


def test_render_many_clips():
    """Rendering is vectorised; 100 clips take well under a second on one core (printed, not asserted)."""
    start = time.perf_counter()
    motions = [render_clip(1000 + s)["motion"] for s in range(100)]
    elapsed = time.perf_counter() - start
    print(f"render_clip: {1e3 * elapsed / 100:.2f} ms per 8-frame 64x64 clip")
    assert all(math.isfinite(m) for m in motions)
