"""Plain image pairs onto the model's GSD and the model's answers back onto their pixel grid.

:class:`ModelGrid` is what :class:`changevg.model.ChangeVG` does with ``gsd=``: each pair is
resampled from the given GSD to the model's (:func:`changevg.gsd.resample_image`), batched
with pairs of the same resampled size, fed to the VGM at that size (not stretched to the
processor's 256 pixels: :func:`changevg.vlm.processor.vgm_own_size`), and its mask and change
objects are put back onto the input's pixel grid. Counts, cells, captions and answers do not
depend on the grid and pass through unchanged.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from catalogs.errors import InputError
from changevg.gsd import ModelGSD, check_gsd, objects_to_grid, resample_image, resample_mask
from changevg.vlm.processor import ImageLike, to_pil, vgm_own_size

__all__ = ["ModelGrid"]

T = TypeVar("T")

MIN_SIDE = 32
"""Smallest side (pixels, after resampling) the VGM's encoder can run on."""


def _chw(image: ImageLike) -> np.ndarray:
    """A ``(3, H, W)`` uint8 array of any image the processor accepts."""
    return np.moveaxis(np.asarray(to_pil(image)), -1, 0)


@dataclass(frozen=True)
class ModelGrid:
    """Pairs resampled to the model's GSD, and how to map results back.

    Attributes:
        pairs: The resampled ``(before, after)`` pairs (``(3, H, W)`` uint8), or the inputs
            unchanged when no GSD was given.
        shapes: Each input pair's ``(height, width)`` (empty when not resampled).
        sizes: Each resampled pair's ``(height, width)`` (empty when not resampled).
        gsd: The inputs' GSD in metres, or ``None`` (fed as they are).
        model_gsd: The model's GSD in metres.
    """

    pairs: list[tuple[ImageLike, ImageLike]]
    shapes: list[tuple[int, int]]
    sizes: list[tuple[int, int]]
    gsd: float | None
    model_gsd: float

    @classmethod
    def make(
        cls,
        pairs: Sequence[tuple[ImageLike, ImageLike]],
        gsd: float | str | None,
        contract: ModelGSD,
        *,
        name: str = "gsd",
    ) -> ModelGrid:
        """Resample ``pairs`` of ``gsd`` metres to the model's GSD (``None``: as they are).

        Raises:
            GSDError: ``gsd`` is not a positive number, or coarser than the model accepts
                (the message names ``name``).
            InputError: A pair is smaller than :data:`MIN_SIDE` pixels once resampled.
        """
        if gsd is None:
            return cls(list(pairs), [], [], None, contract.gsd)
        gsd = check_gsd(gsd, name=name)
        contract.check(
            gsd, what=f"imagery of {name}={gsd:g}", flag=f"no {name} (images fed as they are)"
        )
        out, shapes, sizes = [], [], []
        for before, after in pairs:
            b, a = _chw(before), _chw(after)
            rb, ra = resample_image(b, gsd, contract.gsd), resample_image(a, gsd, contract.gsd)
            if min(rb.shape[-2:]) < MIN_SIDE:
                raise InputError(
                    f"pair {len(out)}: {b.shape[-2]}x{b.shape[-1]} px at {name}={gsd:g} is "
                    f"{rb.shape[-2]}x{rb.shape[-1]} px at the model's {contract.gsd:g} m, "
                    f"smaller than the {MIN_SIDE} px the model needs; use a larger crop"
                )
            out.append((rb, ra))
            shapes.append((b.shape[-2], b.shape[-1]))
            sizes.append((rb.shape[-2], rb.shape[-1]))
        return cls(out, shapes, sizes, gsd, contract.gsd)

    @property
    def resampled(self) -> bool:
        """Whether the VGM sees the pairs at their own (model-GSD) size."""
        return self.gsd is not None

    def own_size(self) -> AbstractContextManager[None]:
        """The context to run the model in: VGM inputs at their own size when resampled."""
        return vgm_own_size() if self.resampled else nullcontext()

    def batches(self, order: Sequence[int], batch_size: int) -> Iterator[list[int]]:
        """Indices in ``order``, ``batch_size`` at a time, each batch of one resampled size.

        Without a GSD every pair is stretched to the processor's size anyway, so batches
        follow ``order`` alone.
        """
        groups: dict[tuple[int, int] | None, list[int]] = {}
        for i in order:
            groups.setdefault(self.sizes[i] if self.resampled else None, []).append(i)
        for idx in groups.values():
            for start in range(0, len(idx), batch_size):
                yield idx[start : start + batch_size]

    def description_back(self, desc: T, index: int) -> T:
        """A VGM description of pair ``index`` with its mask and objects on the input grid."""
        if not self.resampled:
            return desc
        mask = getattr(desc, "mask", None)
        objects = getattr(desc, "objects", None) or []
        changes: dict[str, object] = {
            "objects": objects_to_grid(objects, self.sizes[index], self.shapes[index])
        }
        if mask is not None:
            changes["mask"] = resample_mask(np.asarray(mask, np.uint8), self.shapes[index])
        if dataclasses.is_dataclass(desc) and not isinstance(desc, type):
            return dataclasses.replace(desc, **changes)  # type: ignore[return-value]
        out = copy.copy(desc)
        for key, value in changes.items():
            setattr(out, key, value)
        return out
