"""``predict_tiles``: ChangeVG over every tile pair of a store, screened by the VGM first.

Two rounds, each a list of batches that runs in this process or on a Dask cluster:

1. **screen** — the vision-guided module alone (cheap) scores every tile pair: its screen score
   is the larger of the change head's score and the best change object's score in its mask
   (either branch seeing change is enough; the change head alone missed 19 % of the changed
   validation pairs at 0.5, with the mask 6 %);
2. **analyse** — the VLM answers every task for the tiles whose screen score is at or above
   ``threshold`` (or for all tiles with ``all_tiles=True``).  A tile below the threshold gets
   the VGM's verdict: unchanged, with no objects.

The screening rule, the nodata blanking and the model cache are model logic and live in
:mod:`changevg.screening` and :mod:`changevg.cache`; this module only schedules the batches.

Every tile's result is saved under a deterministic key, ``{results}/{tile_id}.json``, as soon as
its batch finishes, so a run that crashed or was killed redoes only the missing tiles when
started again.  Tiles that are mostly nodata in either date are skipped, counted and listed.
On a cluster, model batches carry the ``GPU`` resource annotation when any worker offers that
resource, so they land on GPU workers.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fsspec
import numpy as np
from tqdm.auto import tqdm

from changevg.cache import cached_model, model_id
from changevg.result import ChangeResult
from changevg.screening import blank_nodata, needs_vlm, screen_score, screened_out, without_mask
from flows.inventory.schema import ModelMismatchError

if TYPE_CHECKING:
    from changevg.vgm import VGMDescription

log = logging.getLogger(__name__)

__all__ = [
    "PredictOptions",
    "PredictSummary",
    "ResultStore",
    "predict_tiles",
]


@dataclass(frozen=True)
class PredictOptions:
    """How tiles are screened and analysed.

    Attributes:
        threshold: Screen score (:func:`changevg.screening.screen_score`) at or above which
            the VLM is asked about a tile.
        all_tiles: Ask the VLM about every tile (no screening).
        screen_batch: Tile pairs per VGM batch.
        vlm_batch: Tile pairs per VLM batch (one ``generate`` per task and batch).
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    """

    threshold: float = 0.5
    all_tiles: bool = False
    screen_batch: int = 32
    vlm_batch: int = 16
    device: str = "auto"

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")
        if self.screen_batch < 1 or self.vlm_batch < 1:
            raise ValueError("screen_batch and vlm_batch must be at least 1")


@dataclass
class PredictSummary:
    """What :func:`predict_tiles` did (results in tile order of the store)."""

    results: dict[str, ChangeResult]
    model_id: str
    n_tiles: int
    n_screened: int = 0
    n_analysed: int = 0
    n_reused: int = 0
    skipped_nodata: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


# --- per-tile results -----------------------------------------------------------------------


class ResultStore:
    """Per-tile results of one run: ``{root}/{tile_id}.json`` (local path or fsspec URL).

    Each file holds the model id, the stage (``screen`` or ``vlm``) and the ``ChangeResult``;
    it is written to a temporary name and renamed, so a killed run never leaves half a file.
    """

    def __init__(self, root: str | Path, *, model: str, overwrite: bool = False) -> None:
        self.root = str(root).rstrip("/")
        self.fs, self._path = fsspec.core.url_to_fs(self.root)
        self.model = model
        self.fs.makedirs(self._path, exist_ok=True)
        others = self._other_models()
        if others and not overwrite:
            raise ModelMismatchError(
                f"{self.root} holds results of model {sorted(others)}, this run uses {model!r}; "
                "use another run id, or overwrite (--overwrite) to redo them with this model"
            )
        if others:
            for p in self.fs.glob(f"{self._path}/*.json"):
                self.fs.rm(p)

    def _other_models(self) -> set[str]:
        marker = f"{self._path}/_model.txt"
        if not self.fs.exists(marker):
            with self.fs.open(marker, "w") as f:
                f.write(self.model)
            return set()
        found = self.fs.cat_file(marker).decode().strip()
        if found != self.model:
            return {found}
        return set()

    def _file(self, tile_id: str) -> str:
        return f"{self._path}/{tile_id}.json"

    def done(self) -> set[str]:
        """Tile ids that already have a result."""
        return {Path(p).stem for p in self.fs.glob(f"{self._path}/*.json")}

    def save(self, tile_id: str, result: ChangeResult, stage: str, screen: float) -> None:
        doc = {"tile_id": tile_id, "model_id": self.model, "stage": stage, "screen_score": screen}
        doc["result"] = result.to_dict()
        tmp = f"{self._path}/.{tile_id}.json.tmp"
        with self.fs.open(tmp, "w") as f:
            json.dump(doc, f)
        self.fs.mv(tmp, self._file(tile_id))

    def load(self, tile_id: str) -> ChangeResult:
        with self.fs.open(self._file(tile_id)) as f:
            return ChangeResult.from_dict(json.load(f)["result"])


# --- work that runs where the model is (this process or a Dask worker) -----------------------


def _pairs(store: str, indices: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    from tiling import open_tiles

    image = open_tiles(store)["image"]
    block = image.isel(tile=list(indices)).values  # (n, time, band, y, x)
    return [blank_nodata(b[0], b[1]) for b in block]


def screen_batch(
    store: str, indices: Sequence[int], model: str, device: str, gsd: float | None = None
) -> list[VGMDescription]:
    """VGM descriptions of the tiles at ``indices`` (their masks dropped); ``gsd``: the
    tiles' metres per pixel (see :func:`feed_gsd`)."""
    descs = cached_model(model, device).screen(_pairs(store, indices), gsd=gsd)
    return [without_mask(d) for d in descs]


def analyse_batch(
    store: str,
    indices: Sequence[int],
    descriptions: Sequence[VGMDescription],
    model: str,
    device: str,
    gsd: float | None = None,
) -> list[ChangeResult]:
    """Every task on the tiles at ``indices``, quoting their VGM ``descriptions``."""
    m = cached_model(model, device)
    return m.predict_batch(
        _pairs(store, indices), descriptions=list(descriptions), batch_size=len(indices), gsd=gsd
    )


def feed_gsd(attrs: dict[str, Any], model: str) -> float | None:
    """The GSD the model is told a store's tiles are at: they are resampled to its own.

    Stores tiled at the model's GSD (the default) need nothing; a store tiled at its native
    GSD (``--gsd native``) is resampled tile by tile. ``None`` (fed as they are) for stores
    written before the GSD was recorded, and for GSDs the model refuses (a store built with
    ``--allow-any-gsd``), with a warning.
    """
    from changevg.gsd import read_model_gsd

    target = (attrs.get("gsd") or {}).get("target")
    if target is None:
        return None
    contract = read_model_gsd(model)
    if target > contract.range[1]:
        log.warning(
            "tiles are %g m per pixel, coarser than the model accepts (%g-%g m): fed as they "
            "are (the store was built with --allow-any-gsd)",
            target,
            *contract.range,
        )
        return None
    return float(target)


# --- running batches locally or on a cluster ----------------------------------------------------


def _chunks(items: Sequence, size: int) -> list[list]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


class _Runner:
    """Runs batch functions here, or on a ``distributed.Client`` (GPU-annotated if offered)."""

    def __init__(self, client: Any = None) -> None:
        self.client = client
        self.resources = None
        if client is not None:
            info = client.scheduler_info()
            workers = (info or {}).get("workers", {}).values()
            if any((w.get("resources") or {}).get("GPU") for w in workers):
                self.resources = {"GPU": 1}

    def map(self, fn: Callable, calls: list[tuple], on_done: Callable[[int, Any], None]) -> None:
        if self.client is None:
            for i, args in enumerate(calls):
                on_done(i, fn(*args))
            return
        from distributed import as_completed

        futures = {
            self.client.submit(fn, *args, resources=self.resources, pure=False): i
            for i, args in enumerate(calls)
        }
        for fut in as_completed(futures):
            on_done(futures[fut], fut.result())


def predict_tiles(
    store: str | Path,
    *,
    model: str | Path | None = None,
    results: str | Path | None = None,
    options: PredictOptions | None = None,
    client: Any = None,
    overwrite: bool = False,
    progress: bool | None = None,
) -> PredictSummary:
    """Run ChangeVG over every tile pair of a tile store (see the module docstring).

    Args:
        store: Tile store path or fsspec URL (``tiling.build_tiles``).
        model: ChangeVG model folder (default: the shipped model).
        results: Folder for per-tile results (resumable); ``None`` keeps them in memory only.
        options: Screening threshold, batch sizes, device.
        client: A ``distributed.Client`` to run the batches on; ``None`` runs them here.
        overwrite: Replace results of this ``results`` folder made by another model.
        progress: Show progress bars (default: only on a terminal).

    Returns:
        Results for every tile that has data, and counts of what was screened, analysed,
        reused from an earlier run and skipped.
    """
    from changevg.model import DEFAULT_MODEL
    from tiling import open_tiles

    options = options or PredictOptions()
    store = str(store)
    model_path = str(Path(model) if model else DEFAULT_MODEL)
    if not Path(model_path).is_dir():
        raise FileNotFoundError(
            f"model folder {model_path} does not exist; pass a ChangeVG model folder "
            "(changevg train vlm …) or leave --model out for the shipped default"
        )
    mid = model_id(model_path)
    ds = open_tiles(store)
    tile_ids = [str(t) for t in ds["tile_id"].values]
    nodata = np.asarray(ds["nodata_fraction"].values)
    limit = float(ds.attrs.get("max_nodata_fraction", 0.5))
    skipped = [
        t for t, f in zip(tile_ids, nodata, strict=True) if np.isnan(f).any() or f.max() > limit
    ]
    saved = ResultStore(results, model=mid, overwrite=overwrite) if results else None
    done = saved.done() if saved else set()
    todo = [i for i, t in enumerate(tile_ids) if t not in done and t not in set(skipped)]
    summary = PredictSummary(
        results={}, model_id=mid, n_tiles=len(tile_ids), skipped_nodata=skipped
    )
    summary.n_reused = sum(1 for t in tile_ids if t in done)
    runner = _Runner(client)
    device = options.device

    def keep(tile: int, result: ChangeResult, stage: str) -> None:
        summary.results[tile_ids[tile]] = result
        if saved:
            saved.save(tile_ids[tile], result, stage, screen_score(descriptions[tile]))

    # round 1: screen
    started = time.perf_counter()
    descriptions: dict[int, VGMDescription] = {}
    flagged: list[int] = []
    gsd = feed_gsd(dict(ds.attrs), model_path)
    screen_calls = [
        (store, c, model_path, device, gsd) for c in _chunks(todo, options.screen_batch)
    ]
    with _bar(len(todo), "screen", progress) as bar:

        def screened(k: int, descs: list[VGMDescription]) -> None:
            for i, d in zip(screen_calls[k][1], descs, strict=True):
                descriptions[i] = d
                if needs_vlm(d, options.threshold, all_tiles=options.all_tiles):
                    flagged.append(i)
                else:
                    keep(i, screened_out(d), "screen")
            bar.update(len(descs))

        runner.map(screen_batch, screen_calls, screened)
    summary.n_screened = len(todo)
    summary.seconds["screen"] = time.perf_counter() - started

    # round 2: the VLM on the flagged tiles
    started = time.perf_counter()
    flagged.sort()
    calls = [
        (store, c, [descriptions[i] for i in c], model_path, device, gsd)
        for c in _chunks(flagged, options.vlm_batch)
    ]
    with _bar(len(flagged), "analyse", progress) as bar:

        def analysed(k: int, out: list[ChangeResult]) -> None:
            for i, r in zip(calls[k][1], out, strict=True):
                keep(i, r, "vlm")
            bar.update(len(out))

        runner.map(analyse_batch, calls, analysed)
    summary.n_analysed = len(flagged)
    summary.seconds["analyse"] = time.perf_counter() - started

    if saved:  # the earlier runs' results, in store order with this run's
        for t in done:
            summary.results[t] = saved.load(t)
    order = {t: k for k, t in enumerate(tile_ids)}
    summary.results = dict(sorted(summary.results.items(), key=lambda kv: order[kv[0]]))
    return summary


def _bar(total: int, desc: str, progress: bool | None):
    return tqdm(
        total=total, desc=desc, unit="tile", disable=None if progress is None else not progress
    )
