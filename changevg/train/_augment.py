"""Training-time augmentation of tile pairs: what real imagery does that synthetic regions lack.

The shipped model learned on synthetic regions whose two dates differ only slightly in colour,
sun and sharpness; on real pairs (LEVIR-CD, WHU-CD) every tile looked "changed" to it. Real
archives mix sensors, seasons, compression and resolutions, so each date gets its own draw of

- **photometry**: brightness, contrast, saturation, hue, gamma and a colour-temperature tilt;
- **sensor**: Gaussian blur or sharpening, noise, and JPEG re-encoding at a random quality;

and the pair as a whole gets

- **geometry**: flips and quarter turns, a GSD jitter (both dates rescaled by one factor, then
  cropped or reflect-padded back to size) and a sub-pixel misregistration of the after date;
- **date swap**: before and after exchanged, so every "new" object becomes "demolished" and the
  other way round (the change-type branch sees both directions equally often);
- **nuisance-only pairs**: the before image against a re-photographed copy of itself — nothing
  changed, however different the two renderings look.

Masks follow the geometry with nearest-neighbour sampling, and labels (captions, change flag) are
re-derived from the augmented mask by :func:`changevg.data.annotate_mask`, so they stay exact.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

__all__ = ["AugmentOptions", "AugmentedPair", "augment_pair", "photometric"]

CHANGE_NEW, CHANGE_DEMOLISHED = 1, 2  # the change-type raster's values (changevg.data.annotate)


@dataclass(frozen=True)
class AugmentOptions:
    """How strongly pairs are augmented (probabilities are per pair unless said per date).

    Attributes:
        photometric: Probability, per date, of a colour draw.
        brightness: Maximum additive brightness shift (fraction of full scale).
        contrast: Contrast factor range.
        saturation: Saturation factor range.
        hue: Maximum hue rotation (fraction of the colour wheel).
        gamma: Gamma range.
        temperature: Maximum red/blue tilt (colour temperature), as a gain fraction.
        sensor: Probability, per date, of blur/sharpen + noise.
        blur_sigma: Largest Gaussian blur (pixels).
        noise: Largest Gaussian noise standard deviation (fraction of full scale).
        jpeg: Probability, per date, of JPEG re-encoding.
        jpeg_quality: Quality range of the re-encoding.
        flip: Apply random flips and quarter turns.
        scale: GSD jitter: range of the rescale factor (``(1, 1)`` disables it).
        scale_prob: Probability of a rescale.
        shift_px: Largest sub-pixel shift of the after date (misregistration).
        swap: Probability of exchanging the dates.
        nochange: Probability of replacing the pair by a nuisance-only pair.
    """

    photometric: float = 0.9
    brightness: float = 0.12
    contrast: tuple[float, float] = (0.7, 1.3)
    saturation: tuple[float, float] = (0.55, 1.4)
    hue: float = 0.04
    gamma: tuple[float, float] = (0.7, 1.45)
    temperature: float = 0.12
    sensor: float = 0.6
    blur_sigma: float = 1.3
    noise: float = 0.03
    jpeg: float = 0.5
    jpeg_quality: tuple[int, int] = (30, 95)
    flip: bool = True
    scale: tuple[float, float] = (0.7, 1.45)
    scale_prob: float = 0.5
    shift_px: float = 1.0
    swap: float = 0.25
    nochange: float = 0.12

    def __post_init__(self) -> None:
        probs = ("photometric", "sensor", "jpeg", "scale_prob", "swap", "nochange")
        for name in probs:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"AugmentOptions.{name} must be a probability, got {value}")
        lo, hi = self.scale
        if not 0.2 <= lo <= hi <= 5.0:
            raise ValueError(f"AugmentOptions.scale must be 0.2 <= lo <= hi <= 5, got {self.scale}")
        qlo, qhi = self.jpeg_quality
        if not 1 <= qlo <= qhi <= 100:
            raise ValueError(f"AugmentOptions.jpeg_quality must lie in 1..100, got {qlo, qhi}")


NONE = AugmentOptions(
    photometric=0.0,
    sensor=0.0,
    jpeg=0.0,
    flip=False,
    scale=(1.0, 1.0),
    scale_prob=0.0,
    shift_px=0.0,
    swap=0.0,
    nochange=0.0,
)
"""Options that leave every pair as it is."""


@dataclass
class AugmentedPair:
    """One augmented training pair: ``(3, H, W)`` uint8 images and ``(H, W)`` uint8 rasters."""

    before: np.ndarray
    after: np.ndarray
    mask: np.ndarray
    change_type: np.ndarray | None


def _hsv_adjust(img: np.ndarray, saturation: float, hue: float) -> np.ndarray:
    """Saturation scale and hue rotation on ``(3, H, W)`` floats in [0, 1] (luma kept)."""
    luma = 0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]
    out = luma + saturation * (img - luma)
    if hue:
        # rotate chroma around the grey axis (YIQ rotation: cheap and smooth)
        y = 0.299 * out[0] + 0.587 * out[1] + 0.114 * out[2]
        i = 0.596 * out[0] - 0.274 * out[1] - 0.322 * out[2]
        q = 0.211 * out[0] - 0.523 * out[1] + 0.312 * out[2]
        a = 2 * np.pi * hue
        i, q = i * np.cos(a) - q * np.sin(a), i * np.sin(a) + q * np.cos(a)
        out = np.stack(
            [y + 0.956 * i + 0.621 * q, y - 0.272 * i - 0.647 * q, y - 1.106 * i + 1.703 * q]
        )
    return out


def photometric(img: np.ndarray, rng: np.random.Generator, opts: AugmentOptions) -> np.ndarray:
    """One date re-photographed: colour, sensor and compression draws on a ``(3, H, W)`` uint8."""
    x = img.astype(np.float32) / 255.0
    valid = (img > 0).any(axis=0)  # nodata (0 in every band) stays 0
    if rng.random() < opts.photometric:
        x = x ** rng.uniform(*opts.gamma)
        tilt = rng.uniform(-opts.temperature, opts.temperature)
        x *= np.array([1 + tilt, 1 + 0.2 * rng.normal() * opts.temperature, 1 - tilt])[
            :, None, None
        ].astype(np.float32)
        mean = x.mean()
        x = (x - mean) * rng.uniform(*opts.contrast) + mean
        x += rng.uniform(-opts.brightness, opts.brightness)
        x = _hsv_adjust(
            np.clip(x, 0, 1), rng.uniform(*opts.saturation), rng.uniform(-1, 1) * opts.hue
        )
    if rng.random() < opts.sensor:
        sigma = rng.uniform(0.0, opts.blur_sigma)
        if rng.random() < 0.3:  # sharpened product: unsharp mask instead of blur
            soft = ndimage.gaussian_filter(x, (0, 1.0, 1.0))
            x = x + rng.uniform(0.3, 1.0) * (x - soft)
        elif sigma > 0.2:
            x = ndimage.gaussian_filter(x, (0, sigma, sigma))
        x = x + rng.normal(0.0, rng.uniform(0.0, opts.noise), x.shape).astype(np.float32)
    out = (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if rng.random() < opts.jpeg:
        buf = io.BytesIO()
        Image.fromarray(np.moveaxis(out, 0, -1)).save(
            buf,
            format="JPEG",
            quality=int(rng.integers(opts.jpeg_quality[0], opts.jpeg_quality[1] + 1)),
        )
        out = np.moveaxis(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")), -1, 0)
    out = np.where(valid[None], np.maximum(out, 1), 0).astype(np.uint8)
    return out


def _flip(arrays: list[np.ndarray | None], k: int, mirror: bool) -> list[np.ndarray | None]:
    out = []
    for a in arrays:
        if a is None:
            out.append(None)
            continue
        b = np.rot90(a, k, axes=(-2, -1))
        out.append(np.ascontiguousarray(b[..., ::-1] if mirror else b))
    return out


def _rescale(
    arrays: list[np.ndarray | None], factor: float, rng: np.random.Generator
) -> list[np.ndarray | None]:
    """Zoom every array by ``factor``, then crop (random window) or reflect-pad back to size."""
    h, w = arrays[0].shape[-2:]
    nh, nw = max(8, round(h * factor)), max(8, round(w * factor))
    top = int(rng.integers(0, nh - h + 1)) if nh > h else 0
    left = int(rng.integers(0, nw - w + 1)) if nw > w else 0
    out = []
    for i, a in enumerate(arrays):
        if a is None:
            out.append(None)
            continue
        image = i < 2
        mode = Image.BICUBIC if image else Image.NEAREST
        if factor < 1 and image:
            mode = Image.LANCZOS  # coarser GSD: area-like downsampling
        if a.ndim == 3:
            z = np.moveaxis(
                np.asarray(Image.fromarray(np.moveaxis(a, 0, -1)).resize((nw, nh), mode)), -1, 0
            )
        else:
            z = np.asarray(Image.fromarray(a).resize((nw, nh), mode))
        if nh >= h and nw >= w:
            z = z[..., top : top + h, left : left + w]
        else:
            ph, pw = max(0, h - nh), max(0, w - nw)
            pad = [(0, 0)] * (z.ndim - 2) + [(ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)]
            z = np.pad(z, pad, mode="reflect")[..., :h, :w]
        out.append(np.ascontiguousarray(z))
    return out


def _shift(img: np.ndarray, dy: float, dx: float) -> np.ndarray:
    moved = ndimage.shift(img.astype(np.float32), (0, dy, dx), order=1, mode="nearest")
    return np.clip(moved + 0.5, 0, 255).astype(np.uint8)


def augment_pair(
    before: np.ndarray,
    after: np.ndarray,
    mask: np.ndarray,
    change_type: np.ndarray | None,
    rng: np.random.Generator,
    opts: AugmentOptions,
) -> AugmentedPair:
    """Augment one labelled pair (see the module docstring for what is drawn).

    Args:
        before: ``(3, H, W)`` uint8 earlier image.
        after: ``(3, H, W)`` uint8 later image, on the same grid.
        mask: ``(H, W)`` class mask (0 background, 1 road, 2 building).
        change_type: ``(H, W)`` raster (1 new, 2 demolished) or None when unknown.
        rng: Random generator (consumed).
        opts: What to draw.
    """
    if before.shape != after.shape or before.shape[1:] != mask.shape:
        raise ValueError(
            f"before {before.shape}, after {after.shape} and mask {mask.shape} do not match"
        )
    if rng.random() < opts.nochange:
        after = before.copy()
        mask = np.zeros_like(mask)
        change_type = None if change_type is None else np.zeros_like(change_type)
    elif rng.random() < opts.swap:
        before, after = after, before
        if change_type is not None:
            swapped = change_type.copy()
            swapped[change_type == CHANGE_NEW] = CHANGE_DEMOLISHED
            swapped[change_type == CHANGE_DEMOLISHED] = CHANGE_NEW
            change_type = swapped
    arrays: list[np.ndarray | None] = [before, after, mask, change_type]
    if opts.flip:
        arrays = _flip(arrays, int(rng.integers(4)), bool(rng.integers(2)))
    if opts.scale_prob and rng.random() < opts.scale_prob:
        lo, hi = opts.scale
        factor = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        arrays = _rescale(arrays, factor, rng)
    before, after, mask, change_type = arrays
    assert before is not None and after is not None and mask is not None
    if opts.shift_px:
        dy, dx = rng.uniform(-opts.shift_px, opts.shift_px, 2)
        after = _shift(after, float(dy), float(dx))
    return AugmentedPair(
        before=photometric(before, rng, opts),
        after=photometric(after, rng, opts),
        mask=mask,
        change_type=change_type,
    )
