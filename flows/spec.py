"""``MonitorSpec``: one monitoring run's parameters, validated and resolved before any work.

Relative date windows become dates, the run id and the output paths are fixed, the output root
is checked to be writable, and a resumed run keeps the run date of its first start.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import fsspec

from catalogs.aoi import parse_aoi, parse_window
from catalogs.errors import InputError
from flows.predict import PredictOptions
from flows.request import IngestRequest, RunRequest
from flows.settings import Settings

__all__ = ["MonitorSpec"]


@dataclass(frozen=True)
class MonitorSpec:
    """One monitoring run, resolved: windows as dates, run id, output paths.

    Build it with :meth:`create` from a :class:`~flows.request.RunRequest`, which validates
    everything before any work starts.
    """

    aoi: str
    catalog: str
    collection: str
    before: str
    after: str
    region: str
    out: str
    run_id: str
    run_date: str
    inventory: str
    model: str | None = None
    predict: PredictOptions = field(default_factory=PredictOptions)
    dask_address: str | None = None
    workers: int | None = None
    overwrite: bool = False
    settings: Settings = field(default_factory=Settings)

    @classmethod
    def create(
        cls,
        request: IngestRequest,
        *,
        settings: Settings | None = None,
        today: dt.date | None = None,
    ) -> MonitorSpec:
        """Validate a request and resolve its relative windows, run id and paths.

        ``out`` and ``inventory`` may hold ``{region}``, ``{run_date}`` and ``{run_id}``
        (scheduled runs write each run to its own folder); ``run_id`` defaults to a hash of the
        region, catalog, collection, AOI and resolved windows, so the same request resumes.

        Args:
            request: The run request; an :class:`IngestRequest` gets the run defaults for the
                model, inventory and Dask fields.
            settings: Settings to use instead of the request's settings file.
            today: The run date (default: today in UTC); relative windows count from it.

        Raises:
            InputError: A parameter is invalid (named), or the output root is not writable.
        """
        from flows.inventory._io import check_name
        from flows.inventory.schema import partition_date as _date

        run = request if isinstance(request, RunRequest) else RunRequest(**asdict(request))
        aoi, catalog, collection, region = run.aoi, run.catalog, run.collection, run.region
        out, inventory, model, workers = run.out, run.inventory, run.model, run.workers
        cfg = settings if settings is not None else Settings.load(run.settings)
        cfg = cfg.with_overrides(predict={"threshold": run.threshold, "all_tiles": run.all_tiles})
        region = check_name("region", region)
        parse_aoi(aoi, max_area_km2=cfg.max_aoi_km2)
        today = today or dt.datetime.now(dt.UTC).date()
        windows = [
            str(parse_window(w, name=n, today=today))
            for w, n in ((run.before, "before"), (run.after, "after"))
        ]
        if model is not None and not Path(model).is_dir():
            raise InputError(
                f"model folder {model} does not exist; pass a ChangeVG model folder or leave "
                "--model out for the shipped default"
            )
        if workers is not None and workers < 1:
            raise InputError(f"workers must be at least 1, got {workers}")
        key = json.dumps([region, catalog, collection, str(aoi), *windows])
        run_id = check_name(
            "run_id", run.run_id or f"{region}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"
        )
        fields = {"region": region, "run_id": run_id, "run_date": _date(today)}
        out = str(out).format(**fields)
        spec = cls(
            aoi=str(aoi),
            catalog=catalog,
            collection=collection,
            before=windows[0],
            after=windows[1],
            region=region,
            out=out,
            run_id=run_id,
            run_date=_date(today),
            inventory=str(inventory).format(**fields) if inventory else join_path(out, "inventory"),
            model=str(model) if model else None,
            predict=cfg.predict,
            dask_address=run.dask_address,
            workers=workers,
            overwrite=run.overwrite,
            settings=cfg,
        )
        return spec.with_run_date()

    def path(self, name: str) -> str:
        return join_path(self.out, name)

    def with_run_date(self) -> MonitorSpec:
        """This spec with the run date of an earlier start of the same run id, if any.

        The date partitions the inventory; a run resumed after midnight keeps its first date.
        Also checks that the output root can be written (before any work).
        """
        fs, root = fsspec.core.url_to_fs(self.out)
        marker = f"{root}/run.json"
        try:
            fs.makedirs(root, exist_ok=True)
            if fs.exists(marker):
                earlier = json.loads(fs.cat_file(marker))
                if earlier.get("run_id") == self.run_id and earlier.get("run_date"):
                    return replace(self, run_date=earlier["run_date"])
            probe = f"{root}/.write-test"
            fs.pipe_file(probe, b"")
            fs.rm(probe)
        except OSError as exc:
            raise InputError(f"output root {self.out} is not writable: {exc}") from None
        return self


def join_path(root: str, name: str) -> str:
    """``root/name`` for a local path or an fsspec URL."""
    return f"{str(root).rstrip('/')}/{name}"
