"""``ChangeVG``: the whole model (VGM + VLM + processor) behind one small API.

>>> model = ChangeVG.load()                       # the shipped default (synthetic-trained)
>>> results = model.predict_batch([(before, after), ...])   # list[ChangeResult]
>>> model.ask(before, after, "How many new buildings are there?")

Images are ``(3, H, W)`` or ``(H, W, 3)`` uint8 arrays, PIL images or file paths. Given their
ground sample distance (``gsd=`` metres per pixel) they are resampled to the model's
(:attr:`ChangeVG.gsd`) and masks and objects come back on their own pixel grid.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from changevg.gsd import ModelGSD
from changevg.result import ChangeResult

log = logging.getLogger(__name__)

DEFAULT_MODEL = Path(__file__).resolve().parent / "weights" / "default"
"""The shipped default: a small ChangeVG trained here on synthetic regions (see its README)."""

Pair = tuple[Any, Any]
"""``(before, after)``: ``(3, H, W)``/``(H, W, 3)`` uint8 arrays, tensors, PIL images, or paths
to PNG/JPEG/GeoTIFF files (read and aligned by :func:`changevg.imageio.read_pair`)."""


def _read_paths(pairs: Sequence[Pair]) -> list[Pair]:
    """Pairs with any file path replaced by its pixels (both dates on one grid)."""
    from changevg.imageio import read_pair

    return [
        read_pair(b, a) if isinstance(b, str | Path) or isinstance(a, str | Path) else (b, a)
        for b, a in pairs
    ]


def _resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class ChangeVG:
    """A loaded ChangeVG model ready for batched inference and dialogue."""

    def __init__(self, model: torch.nn.Module, processor: Any, *, name: str = "changevg") -> None:
        self.model = model.eval()
        self.processor = processor
        self.name = name
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        settings = getattr(getattr(base, "config", None), "changevg", None)
        self.gsd_contract = ModelGSD.from_config(settings, source=f"model {name}")

    @property
    def gsd(self) -> float:
        """Metres per pixel the model was trained at (``config.json`` → ``changevg.gsd``)."""
        return self.gsd_contract.gsd

    @property
    def gsd_range(self) -> tuple[float, float]:
        """``(finest, coarsest)`` source GSD in metres the model accepts; coarser is refused."""
        return self.gsd_contract.range

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        base: str | Path | None = None,
        adapter: str | Path | None = None,
        vgm: str | Path | None = None,
        device: str | torch.device = "auto",
    ) -> ChangeVG:
        """Load from local folders only (no hub): a ChangeVG folder, or base + adapter + VGM.

        Args:
            path: A ChangeVG model folder; default: the shipped model when no ``base`` is given.
            base: A Qwen2.5-VL-Instruct folder (real weights you brought).
            adapter: A LoRA adapter folder trained on ``base``.
            vgm: A VGM folder (``changevg train vgm``) to attach to ``base``.
            device: ``"auto"`` (CUDA if present), ``"cpu"`` or ``"cuda"``; bf16 on CUDA.

        Raises:
            FileNotFoundError: a folder or one of its files is missing (named).
        """
        from changevg.vlm.io import load_changevg

        if path is None and base is None:
            path = DEFAULT_MODEL
        for name, folder in (("model", path), ("base", base), ("adapter", adapter), ("vgm", vgm)):
            if folder is not None and not Path(folder).is_dir():
                raise FileNotFoundError(f"{name} folder {folder} does not exist")
        dev = _resolve_device(device)
        dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
        model, processor = load_changevg(
            path, base=base, adapter=adapter, vgm=vgm, dtype=dtype, device=dev
        )
        return cls(model, processor, name=str(path or base))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def vgm(self) -> torch.nn.Module:
        return self.model.vgm

    def _grid(self, pairs: Sequence[Pair], gsd: float | None) -> Any:
        from changevg.regrid import ModelGrid

        return ModelGrid.make(_read_paths(pairs), gsd, self.gsd_contract)

    def _describe(self, grid: Any, batch_size: int) -> list[Any]:
        from changevg.vlm.answer import describe_pairs

        out: list[Any] = [None] * len(grid.pairs)
        with grid.own_size():
            for idx in grid.batches(range(len(grid.pairs)), batch_size):
                descs = describe_pairs(self.model, self.processor, [grid.pairs[j] for j in idx])
                for j, desc in zip(idx, descs or [None] * len(idx), strict=True):
                    out[j] = grid.description_back(desc, j)
        return out

    @torch.inference_mode()
    def screen(
        self, pairs: Sequence[Pair], *, batch_size: int = 32, gsd: float | None = None
    ) -> list[Any]:
        """The VGM alone on every pair (cheap): descriptions with change score, mask, objects.

        Args:
            pairs: ``(before, after)`` images.
            batch_size: Pairs per VGM call.
            gsd: The images' metres per pixel: they are resampled to :attr:`gsd` and the masks
                and objects come back on their own grid. ``None``: fed as they are.

        Raises:
            GSDError: ``gsd`` is not a positive number or is coarser than :attr:`gsd_range`.
        """
        return self._describe(self._grid(pairs, gsd), batch_size)

    @torch.inference_mode()
    def predict_batch(
        self,
        pairs: Sequence[Pair],
        *,
        tasks: Iterable[str] | None = None,
        batch_size: int = 16,
        descriptions: Sequence[Any] | None = None,
        gsd: float | None = None,
        share_prefix: bool = True,
    ) -> list[ChangeResult]:
        """Every task on every pair, in padding-aware batches.

        Pairs are sorted by the length of their VGM hint before batching, so a batch's prompts
        have similar lengths and little left padding; results come back in input order.

        Args:
            pairs: ``(before, after)`` images.
            tasks: ChangeIMTI tasks to ask (default: all).
            batch_size: Pairs per ``generate`` call.
            descriptions: VGM outputs from :meth:`screen` (with the same ``gsd``), to avoid
                running the VGM twice.
            gsd: The images' metres per pixel (see :meth:`screen`); objects come back on the
                input's pixel grid.
            share_prefix: Encode each pair's images, VGM block and hint once and answer all
                tasks from that cached prefix (:mod:`changevg.vlm.prefix`); ``False`` asks each
                task with its own ``generate`` call (the slower baseline, same greedy answers).
        """
        from changevg.vlm.answer import analyse_pairs
        from changevg.vlm.prompts import TASKS, format_vgm_text

        tasks = tuple(tasks or TASKS)
        grid = self._grid(pairs, gsd)
        descs = list(descriptions) if descriptions is not None else self._describe(grid, 32)
        lengths = [len(format_vgm_text(d.caption, d.counts, d.cells)) for d in descs]
        order = np.argsort(lengths, kind="stable").tolist()
        results: list[ChangeResult | None] = [None] * len(grid.pairs)
        with grid.own_size():  # the VGM embeddings see the pairs as screen() did
            for idx in grid.batches(order, batch_size):
                batch = analyse_pairs(
                    self.model,
                    self.processor,
                    [grid.pairs[j] for j in idx],
                    tasks=tasks,
                    vgm=[descs[j] for j in idx],  # on the input grid: so are the objects
                    share_prefix=share_prefix,
                )
                for j, result in zip(idx, batch, strict=True):
                    results[j] = result
        return results  # type: ignore[return-value]

    @torch.inference_mode()
    def ask(
        self,
        before: Any,
        after: Any,
        question: str,
        *,
        history: Sequence[tuple[str, str]] = (),
        free_text: bool = False,
        gsd: float | None = None,
    ) -> str:
        """Answer one question about one pair, as one turn of a dialogue.

        A question that asks one of the five tasks (however worded, in whichever turn) gets the
        answer :meth:`predict_batch` gives for that task; any other question gets
        :data:`changevg.vlm.dialogue.OUT_OF_SCOPE_REPLY` unless ``free_text`` is set, in which
        case the model answers it as it stands (unchecked: it was not trained for it).

        Args:
            before, after: The pair (arrays, PIL images or paths).
            question: The question, at most ``MAX_QUESTION_CHARS`` characters.
            history: Earlier turns as ``(question, answer)`` pairs, oldest first, e.g.
                ``[("Has anything changed?", "yes")]``.
            free_text: Pass unrecognised questions to the model instead of the fixed reply.
            gsd: The images' metres per pixel, resampled to :attr:`gsd` (see :meth:`screen`).

        Raises:
            InputError: An empty or overlong question, or ``history`` of the wrong shape.
        """
        from changevg.vlm.answer import ask
        from changevg.vlm.dialogue import (
            OUT_OF_SCOPE_REPLY,
            check_history,
            check_question,
            route,
        )

        question = check_question(question)
        turns = check_history(history)
        task = route(question)
        if task is None and not free_text:
            return OUT_OF_SCOPE_REPLY
        grid = self._grid([(before, after)], gsd)
        desc = self._describe(grid, 1)
        with grid.own_size():
            return ask(
                self.model,
                self.processor,
                grid.pairs,
                task or question,  # a task: asked as predict_batch asks it (first turn, own prompt)
                vgm=desc,
                history=[[] if task else turns],
            )[0]


def predict_batch(
    pairs: Sequence[Pair], *, model: ChangeVG | None = None, **kwargs: Any
) -> list[ChangeResult]:
    """:meth:`ChangeVG.predict_batch` with the default model unless ``model`` is given."""
    return (model or ChangeVG.load()).predict_batch(pairs, **kwargs)
