"""Procedural video clips with known motion, for training and probing a tiny SVD-style model.

Each clip shows 1 to 3 anti-aliased shapes (circle, square, triangle) over a smooth background
(a colour gradient plus a few low-frequency sinusoids). A per-clip speed ``s`` is drawn; every
shape moves at ``s`` px/frame in its own direction and bounces off the borders, and with
probability ``pan_prob`` the camera pans, translating the whole scene. Because every trajectory is
known, the true mean motion of the clip (px/frame, averaged over pixels and frame pairs) is
returned alongside the frames; it is mapped to SVD's ``motion_bucket_id`` by :func:`motion_bucket`.

Everything is drawn from a ``torch.Generator`` seeded from the clip's seed, so a clip depends
only on its arguments (never on the global RNG, the worker, or the order of access).

Frames are float32 in [-1, 1] with layout (T, 3, H, W), the range the autoencoder expects.
"""
import math
from typing import Dict, Optional, Sequence

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

__all__ = [
    "MOTION_PER_SPEED",
    "max_motion_for",
    "render_clip",
    "motion_bucket",
    "SyntheticMotionClips",
    "collate_video",
    "SyntheticMotionDataModule",
]

# Upper end of the mean motion used to scale buckets, as a fraction of ``max_speed``.
#
# The mean over the image is dominated by the pan: background pixels (roughly 75-97 % of the frame)
# move only with the camera, at most max_speed / 2 px/frame; the shapes, at most
# 1.5 * max_speed, cover a few percent of it. The theoretical bound, 1.5 * max_speed (every pixel
# moving at the fastest rate), is never approached: using it would squeeze all buckets into
# 0..~95. Empirically, over 2000 clips of ``SyntheticMotionClips`` defaults (seed 0, T = 8,
# 64 x 64, max_speed 4, pan_prob 0.3; 213 static, 520 panning), the mean motion in px/frame was
# min 0 / p10 0 / median 0.121 / p90 1.26 / p99 1.95 / max 2.24, i.e. at most 0.56 * max_speed.
# With 0.55 * max_speed (2.2 px/frame for max_speed 4) the fastest pans reach the top bucket
# (2 clips saturate at 255) and the pans spread over the whole range. Buckets: median 14,
# 249 clips at 0; bins [0, 51) 1552, [51, 102) 140, [102, 153) 126, [153, 204) 117,
# [204, 255] 65. The skew towards small buckets is inherent: without a pan only the small shapes
# move (no-pan clips: bucket median 8, max 64); panning clips have bucket median 124.
MOTION_PER_SPEED = 0.55

STATIC_PROB = 0.1
NUM_SHAPE_KINDS = 3  # 0 circle, 1 square, 2 triangle
_EXTENT = (1.0, 0.85 * math.sqrt(2.0), 1.35)  # farthest point from the centre, in radii, per kind
_COLOUR_CANDIDATES = 6


def max_motion_for(max_speed: float) -> float:
    """The mean motion (px/frame) mapped to bucket 255 for clips drawn with ``max_speed``."""
    return MOTION_PER_SPEED * float(max_speed)


def motion_bucket(motion: float, max_motion: float) -> int:
    """SVD-style motion bucket: ``round(255 * clip(motion / max_motion, 0, 1))``.

    Use ``max_motion = max_motion_for(max_speed)`` (0.55 * max_speed; see ``MOTION_PER_SPEED``
    for the empirical distribution behind that constant).
    """
    if max_motion <= 0:
        raise ValueError(f"max_motion must be positive, got {max_motion}")
    ratio = min(max(float(motion) / float(max_motion), 0.0), 1.0)
    return int(round(255.0 * ratio))


def _uniform(gen: torch.Generator, shape, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=gen, dtype=torch.float64)


def _fold(u: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """Position after bouncing between walls at 0 and ``length``, for unbounded travel ``u``."""
    span = 2.0 * length
    m = torch.remainder(u, span)
    return length - (m - length).abs()


def _shape_sdf(kind: int, qx: torch.Tensor, qy: torch.Tensor, radius: float) -> torch.Tensor:
    """Signed distance (px, negative inside) of one shape, at points (qx, qy) in its own frame.

    Circle (kind 0): exact. Square (kind 1, half side ``0.85 * radius``, area close to the
    circle's): exact box distance. Triangle (kind 2, equilateral, circumradius ``1.35 * radius``):
    maximum over its three edge half-planes, exact inside and near the edges, which is all a
    1 px anti-aliasing ramp needs.
    """
    if kind == 0:
        return torch.hypot(qx, qy) - radius
    if kind == 1:
        half = 0.85 * radius
        ax = qx.abs() - half
        ay = qy.abs() - half
        outside = torch.hypot(ax.clamp(min=0), ay.clamp(min=0))
        return outside + torch.maximum(ax, ay).clamp(max=0)
    inradius = 0.5 * 1.35 * radius
    dist = None
    for k in range(3):
        angle = math.pi / 2 + 2 * math.pi * k / 3
        edge = qx * math.cos(angle) + qy * math.sin(angle) - inradius
        dist = edge if dist is None else torch.maximum(dist, edge)
    return dist


def render_clip(
    seed: int,
    num_frames: int = 8,
    size: int = 64,
    max_speed: float = 4.0,
    pan_prob: float = 0.3,
    static_prob: float = STATIC_PROB,
    min_shapes: int = 1,
    max_shapes: int = 3,
    min_size: float = 8.0,
    max_size: float = 18.0,
) -> Dict[str, object]:
    """Render one clip; a pure function of its arguments.

    Draws (from ``torch.Generator().manual_seed(seed)``): a background (two colours blended along
    a random direction, plus three sinusoids of wavelength 20-56 px and amplitude 0.03-0.08), a
    speed ``s`` (exactly 0, and no pan, with probability ``static_prob``; else Uniform[0,
    max_speed] px/frame), and ``min_shapes..max_shapes`` shapes of size ``min_size..max_size`` px
    (a circle's diameter; squares and triangles of similar area), each with its own direction and a colour chosen, among a few random
    candidates, farthest from the background's mean colour. With probability ``pan_prob`` (not for
    static clips) a pan velocity of magnitude Uniform[0, max_speed / 2] in a random direction is
    added to everything; the background is evaluated analytically at the shifted coordinates,
    so there are no wrap or edge artefacts.

    Shapes bounce (reflected velocity) inside the part of the scene that stays in view during the
    whole pan, so they are fully visible in every frame (as long as the frame is large enough to
    hold a shape plus the pan's drift, as it always is at 64 px, T = 8, max_speed 4). Edges are anti-aliased with a 1 px ramp
    on the signed distance.

    Returns a dict:
      ``frames``: float32 (T, 3, size, size) in [-1, 1];
      ``motion``: the true mean motion, px/frame: for each consecutive pair (t, t+1) the per-pixel
      displacement vector (the pan for background pixels, the shape's image-space displacement
      including the pan for shape pixels, blended by the frame-t coverage masks in drawing order)
      has its magnitude averaged over the image; then averaged over the T - 1 pairs;
      ``speed``: s; ``pan``: (px, py) in px/frame (x to the right, y down).
    """
    if num_frames < 1 or size < 1:
        raise ValueError("num_frames and size must be positive")
    if not 1 <= min_shapes <= max_shapes:
        raise ValueError("need 1 <= min_shapes <= max_shapes")
    gen = torch.Generator().manual_seed(int(seed) % (2**63))
    f64 = torch.float64

    # --- every draw happens in a fixed order and count, whatever the outcomes ---
    u_static, u_pan = torch.rand(2, generator=gen, dtype=f64).tolist()
    speed_draw = float(_uniform(gen, (), 0.0, max_speed))
    pan_mag = float(_uniform(gen, (), 0.0, max_speed / 2.0))
    pan_angle = float(_uniform(gen, (), 0.0, 2 * math.pi))
    n_shapes = int(torch.randint(min_shapes, max_shapes + 1, (1,), generator=gen))

    bg_c0 = _uniform(gen, (3,), -0.65, 0.65)
    bg_c1 = _uniform(gen, (3,), -0.65, 0.65)
    grad_angle = float(_uniform(gen, (), 0.0, 2 * math.pi))
    n_waves = 3
    wave_len = _uniform(gen, (n_waves,), 20.0, 56.0)
    wave_dir = _uniform(gen, (n_waves,), 0.0, 2 * math.pi)
    wave_phase = _uniform(gen, (n_waves,), 0.0, 2 * math.pi)
    wave_amp = _uniform(gen, (n_waves,), 0.03, 0.08)
    wave_tint = _uniform(gen, (n_waves, 3), 0.5, 1.0)

    kinds = torch.randint(0, NUM_SHAPE_KINDS, (max_shapes,), generator=gen)[:n_shapes]
    radii = _uniform(gen, (max_shapes,), min_size / 2.0, max_size / 2.0)[:n_shapes]
    rot = _uniform(gen, (max_shapes,), 0.0, 2 * math.pi)[:n_shapes]
    heading = _uniform(gen, (max_shapes,), 0.0, 2 * math.pi)[:n_shapes]
    start = torch.rand((max_shapes, 2), generator=gen, dtype=f64)[:n_shapes]
    candidates = _uniform(gen, (max_shapes, _COLOUR_CANDIDATES, 3), -1.0, 1.0)[:n_shapes]

    static = u_static < static_prob
    speed = 0.0 if static else speed_draw
    panning = (not static) and u_pan < pan_prob
    pan = (pan_mag * math.cos(pan_angle), pan_mag * math.sin(pan_angle)) if panning else (0.0, 0.0)
    pan_t = torch.tensor(pan, dtype=f64)

    T, S = num_frames, size
    f32 = torch.float32

    # --- shape colours: the candidate farthest from the background's mean colour ---
    mid = 0.5 * (bg_c0 + bg_c1)
    dist = (candidates - mid[None, None]).norm(dim=-1)  # (N, C)
    colours = candidates[torch.arange(n_shapes), dist.argmax(dim=1)].to(f32)  # (N, 3)

    # --- trajectories (float64): bounce in the scene region that stays in view during the pan ---
    t64 = torch.arange(T, dtype=f64)
    drift = pan_t * (T - 1)  # total pan displacement
    extent = radii * torch.tensor(_EXTENT, dtype=f64)[kinds]  # (N,) keeps rotated corners in view
    lo = extent[:, None] + (-drift).clamp(min=0)[None]  # (N, 2) lowest centre, scene coords
    hi = S - extent[:, None] - drift.clamp(min=0)[None]
    length = (hi - lo).clamp(min=1e-6)
    vel = speed * torch.stack([torch.cos(heading), torch.sin(heading)], dim=-1)  # (N, 2)
    u = (start * length)[None] + vel[None] * t64[:, None, None]  # (T, N, 2) unfolded travel from lo
    centres = lo[None] + _fold(u, length[None]) + pan_t[None, None] * t64[:, None, None]  # image coords
    steps = centres[1:] - centres[:-1]  # (T-1, N, 2) image-space displacement, pan included
    centres, steps = centres.tolist(), steps.tolist()

    # --- per-frame constants ---
    coords = torch.arange(S, dtype=f64) + 0.5  # pixel centres
    k = 2 * math.pi / wave_len
    wave_kx = (k * torch.cos(wave_dir))[:, None]  # (waves, 1)
    wave_ky = (k * torch.sin(wave_dir))[:, None]
    wave_weight = (wave_amp[:, None] * wave_tint).to(f32)[:, :, None, None]  # (waves, 3, 1, 1)
    grad_x, grad_y = math.cos(grad_angle) / S, math.sin(grad_angle) / S
    mid32 = mid.to(f32)[:, None, None]
    span32 = (bg_c1 - bg_c0).to(f32)[:, None, None]
    rotation = [(math.cos(a), math.sin(a)) for a in rot.tolist()]
    kind_list, radius_list = kinds.tolist(), radii.tolist()
    reach = (extent + 1.0).tolist()  # half-size of the window a shape (and its ramp) can touch
    pan_speed = math.hypot(*pan)

    # Frame by frame, each shape only inside its own small window: every op is small enough to
    # run serially, which keeps rendering fast and insensitive to CPU contention.
    frames = torch.empty(T, 3, S, S, dtype=f32)
    motion_sum = 0.0
    for t in range(T):
        # background at scene coordinates (x - pan_x t, y - pan_y t): no wrap, no edges.
        # The sinusoids are separable: sin(a + b) = sin a cos b + cos a sin b.
        bx = coords - pan[0] * t  # (S,)
        by = coords - pan[1] * t
        ramp = ((by[:, None] - S / 2) * grad_y + (bx[None, :] - S / 2) * grad_x).to(f32)  # (S, S)
        ax = wave_kx * bx[None] + wave_phase[:, None]  # (waves, S) along x
        ay = wave_ky * by[None]  # (waves, S) along y
        sin_x, cos_x = torch.sin(ax).to(f32)[:, None, :], torch.cos(ax).to(f32)[:, None, :]
        sin_y, cos_y = torch.sin(ay).to(f32)[:, :, None], torch.cos(ay).to(f32)[:, :, None]
        waves = sin_x * cos_y + cos_x * sin_y  # (waves, S, S)
        img = torch.addcmul(mid32, span32, ramp[None])
        img += (wave_weight * waves[:, None]).sum(dim=0)

        pair = t + 1 < T  # the per-pixel displacement to the next frame: the pan, then the shapes
        if pair:
            field_x = torch.full((S, S), pan[0], dtype=f32)
            field_y = torch.full((S, S), pan[1], dtype=f32)
            touched = None  # bounding box of the pixels whose displacement is not the pan
        for i in range(n_shapes):
            cx, cy = centres[t][i]
            x0, x1 = max(0, math.floor(cx - reach[i])), min(S, math.ceil(cx + reach[i]) + 1)
            y0, y1 = max(0, math.floor(cy - reach[i])), min(S, math.ceil(cy + reach[i]) + 1)
            if x0 >= x1 or y0 >= y1:
                continue
            c, s_ = rotation[i]
            dx = (coords[x0:x1] - cx).to(f32)[None, :]
            dy = (coords[y0:y1] - cy).to(f32)[:, None]
            qx, qy = c * dx + s_ * dy, c * dy - s_ * dx  # in the shape's frame
            alpha = (0.5 - _shape_sdf(kind_list[i], qx, qy, radius_list[i])).clamp_(0.0, 1.0)
            window = img[:, y0:y1, x0:x1]
            window.copy_(torch.lerp(window, colours[i][:, None, None].expand_as(window), alpha[None]))
            if pair:
                for field, value in ((field_x, steps[t][i][0]), (field_y, steps[t][i][1])):
                    patch = field[y0:y1, x0:x1]
                    patch.copy_(torch.lerp(patch, torch.full_like(patch, value), alpha))
                box = (y0, y1, x0, x1)
                touched = box if touched is None else (
                    min(touched[0], y0), max(touched[1], y1), min(touched[2], x0), max(touched[3], x1)
                )
        frames[t] = img.clamp_(-1.0, 1.0)
        if pair:
            total = pan_speed * S * S
            if touched is not None:
                y0, y1, x0, x1 = touched
                inside = torch.hypot(field_x[y0:y1, x0:x1], field_y[y0:y1, x0:x1])
                total += float(inside.double().sum()) - pan_speed * inside.numel()
            motion_sum += total / (S * S)

    # --- true mean motion: per-pixel displacement magnitude, averaged over pixels and pairs ---
    motion = motion_sum / (T - 1) if T > 1 else 0.0

    return {"frames": frames, "motion": motion, "speed": float(speed), "pan": (float(pan[0]), float(pan[1]))}


def _item_seed(seed: int, index: int) -> int:
    return (int(seed) * 1_000_003 + int(index)) % (2**63)


class SyntheticMotionClips(Dataset):
    """``num_clips`` rendered clips with SVD training conditioning.

    Item ``i`` is ``render_clip(seed * 1_000_003 + i, ...)`` plus conditioning drawn from a second
    generator seeded from the same item seed: ``cond_aug = exp(N(cond_aug_mean, cond_aug_std))``
    and ``cond_frames = frames[0] + cond_aug * N(0, 1)``. Keys: ``frames`` (T, 3, H, W) in [-1, 1],
    ``cond_frames_without_noise`` and ``cond_frames`` (3, H, W), ``motion_bucket_id`` and ``fps_id``
    (int64 scalars), ``cond_aug`` and ``motion`` (float32 scalars).
    """

    def __init__(
        self,
        num_clips: int,
        num_frames: int = 8,
        size: int = 64,
        seed: int = 0,
        max_speed: float = 4.0,
        pan_prob: float = 0.3,
        fps_id: int = 6,
        cond_aug_mean: float = -3.0,
        cond_aug_std: float = 0.5,
    ):
        super().__init__()
        if num_clips < 0:
            raise ValueError("num_clips must be non-negative")
        self.num_clips = int(num_clips)
        self.num_frames = int(num_frames)
        self.size = int(size)
        self.seed = int(seed)
        self.max_speed = float(max_speed)
        self.pan_prob = float(pan_prob)
        self.fps_id = int(fps_id)
        self.cond_aug_mean = float(cond_aug_mean)
        self.cond_aug_std = float(cond_aug_std)
        self.max_motion = max_motion_for(self.max_speed)

    def __len__(self) -> int:
        return self.num_clips

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        if index < 0:
            index += self.num_clips
        if not 0 <= index < self.num_clips:
            raise IndexError(index)
        item_seed = _item_seed(self.seed, index)
        clip = render_clip(
            item_seed, num_frames=self.num_frames, size=self.size, max_speed=self.max_speed, pan_prob=self.pan_prob
        )
        # a stream distinct from the renderer's (same seed would replay its first draws)
        gen = torch.Generator().manual_seed((item_seed * 0x9E3779B1 + 0x2545F491) % (2**63))
        log_aug = self.cond_aug_mean + self.cond_aug_std * torch.randn((), generator=gen)
        cond_aug = torch.exp(log_aug).to(torch.float32)
        frames = clip["frames"]
        first = frames[0]
        noise = torch.randn(first.shape, generator=gen, dtype=torch.float32)
        return {
            "frames": frames,
            "cond_frames_without_noise": first.clone(),
            "cond_frames": first + cond_aug * noise,
            "motion_bucket_id": torch.tensor(motion_bucket(clip["motion"], self.max_motion), dtype=torch.int64),
            "fps_id": torch.tensor(self.fps_id, dtype=torch.int64),
            "cond_aug": cond_aug,
            "motion": torch.tensor(clip["motion"], dtype=torch.float32),
        }


def collate_video(items: Sequence[Dict[str, torch.Tensor]]) -> Dict[str, object]:
    """Flatten B clips of T frames into the batch the video diffusion model consumes.

    ``jpg`` (B*T, 3, H, W), rows ``b*T .. b*T+T-1`` being clip b; ``cond_frames_without_noise`` and
    ``cond_frames`` (B, 3, H, W); ``motion_bucket_id``, ``fps_id`` (B*T,) int64 and ``cond_aug``
    (B*T,) float32, each clip's value repeated T times; ``num_video_frames`` T (python int);
    ``image_only_indicator`` zeros (B, T); ``motion`` (B,) float32.
    """
    if len(items) == 0:
        raise ValueError("empty batch")
    frames = torch.stack([it["frames"] for it in items])  # (B, T, 3, H, W)
    b, t = frames.shape[:2]

    def per_frame(key: str, dtype: torch.dtype) -> torch.Tensor:
        values = torch.stack([torch.as_tensor(it[key]).reshape(()) for it in items]).to(dtype)
        return values.repeat_interleave(t)

    return {
        "jpg": frames.reshape(b * t, *frames.shape[2:]),
        "cond_frames_without_noise": torch.stack([it["cond_frames_without_noise"] for it in items]),
        "cond_frames": torch.stack([it["cond_frames"] for it in items]),
        "motion_bucket_id": per_frame("motion_bucket_id", torch.int64),
        "fps_id": per_frame("fps_id", torch.int64),
        "cond_aug": per_frame("cond_aug", torch.float32),
        "num_video_frames": int(t),
        "image_only_indicator": torch.zeros(b, t),
        "motion": torch.stack([torch.as_tensor(it["motion"]).reshape(()) for it in items]).to(torch.float32),
    }


class SyntheticMotionDataModule(pl.LightningDataModule):
    """Train / held-out validation loaders over :class:`SyntheticMotionClips`.

    The training set uses ``seed``, the validation set ``seed + 1`` (different item seeds, since
    item seeds are ``seed * 1_000_003 + i`` with ``i < 1_000_003``). Training batches are shuffled
    with a generator seeded from ``seed``; validation keeps its order. Plain keyword arguments, so
    it can be built from YAML with ``target: sgm.data.synthetic_motion.SyntheticMotionDataModule``.
    """

    def __init__(
        self,
        batch_size: int = 4,
        num_workers: int = 0,
        train_clips: int = 100_000,
        val_clips: int = 64,
        num_frames: int = 8,
        size: int = 64,
        seed: int = 0,
        max_speed: float = 4.0,
        pan_prob: float = 0.3,
        fps_id: int = 6,
        cond_aug_mean: float = -3.0,
        cond_aug_std: float = 0.5,
    ):
        super().__init__()
        if max(train_clips, val_clips) > 1_000_003:
            raise ValueError("at most 1_000_003 clips per split (keeps train and val item seeds disjoint)")
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.seed = int(seed)
        common = dict(
            num_frames=num_frames,
            size=size,
            max_speed=max_speed,
            pan_prob=pan_prob,
            fps_id=fps_id,
            cond_aug_mean=cond_aug_mean,
            cond_aug_std=cond_aug_std,
        )
        self.train_dataset = SyntheticMotionClips(train_clips, seed=self.seed, **common)
        self.val_dataset = SyntheticMotionClips(val_clips, seed=self.seed + 1, **common)
        self._shuffle_gen = torch.Generator().manual_seed(self.seed % (2**63))

    def setup(self, stage: Optional[str] = None) -> None:  # datasets are lazy; nothing to prepare
        pass

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            generator=self._shuffle_gen if shuffle else None,
            num_workers=self.num_workers,
            collate_fn=collate_video,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_dataset, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_dataset, shuffle=False)
