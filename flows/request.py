"""``RunRequest``: what a user asks of one monitoring run, written down once.

The flows take it as their one parameter (Prefect builds the deployment's parameter schema from
the dataclass, and validates a run's JSON parameters into it), :meth:`flows.spec.MonitorSpec.create`
resolves it, and ``changevg run`` builds its options from its fields (each field's ``help``
metadata is the option's help text). ``prefect.yaml`` lists a deployment's request under
``parameters: request:``.

:class:`IngestRequest` holds the fields that searching and tiling need (the ``ingest-region``
flow); :class:`RunRequest` adds the model, inventory and Dask fields of the whole run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["IngestRequest", "RunRequest"]


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True, kw_only=True)
class IngestRequest:
    """The search-and-tile part of a run request (the ``ingest-region`` flow's parameter).

    Attributes:
        aoi: ``minx,miny,maxx,maxy`` in lon/lat, or the path of a GeoJSON file.
        catalog: STAC API URL.
        collection: Collection id to search.
        before: Before date window ``START/END``: ISO dates, or relative to the run date
            (``-2y/-1y``, ``-15m/-12m``).
        after: After date window (``-1y/today``, ``2024-01-01/2024-12-31``).
        region: Region name (the inventory's partition).
        out: Output folder of the run (local path or fsspec URL); may use ``{region}``,
            ``{run_date}`` and ``{run_id}``.
        run_id: Run id; default: a hash of the request, so the same request resumes.
        settings: Settings TOML file (default: ``$CHANGEVG_CONFIG``, else the defaults).
    """

    aoi: str = field(metadata=_help("minx,miny,maxx,maxy in lon/lat, or GeoJSON file"))
    catalog: str = field(metadata=_help("STAC API URL"))
    collection: str = field(metadata=_help("collection id to search"))
    before: str = field(
        metadata=_help("before window START/END: ISO dates, or relative to today (-2y/-1y)")
    )
    after: str = field(metadata=_help("after window (-1y/today, 2024-01-01/…)"))
    region: str = field(metadata=_help("region name (inventory partition)"))
    out: str = field(metadata=_help("output folder of this run"))
    run_id: str | None = field(
        default=None, metadata=_help("run id (default: a hash of the request, so reruns resume)")
    )
    settings: str | None = field(
        default=None, metadata=_help("settings TOML file (default: $CHANGEVG_CONFIG)")
    )


@dataclass(frozen=True, kw_only=True)
class RunRequest(IngestRequest):
    """Everything a user asks of one monitoring run (the ``monitor-region`` flow's parameter).

    Attributes:
        model: ChangeVG model folder; default: the shipped model.
        inventory: Inventory root; default: ``{out}/inventory``. May use the ``out``
            placeholders.
        threshold: Screen score that sends a tile to the VLM; default: the settings' (0.5).
        all_tiles: Ask the VLM about every tile (no screening); default: the settings'.
        dask_address: An existing Dask scheduler; default: a cluster on 127.0.0.1.
        workers: Local Dask worker processes; default: one in-process worker.
        overwrite: Replace results and inventory rows of this run id made by another model.
    """

    model: str | None = field(
        default=None, metadata=_help("ChangeVG model folder (default: the shipped model)")
    )
    inventory: str | None = field(
        default=None, metadata=_help("inventory root (default: OUT/inventory)")
    )
    threshold: float | None = field(
        default=None, metadata=_help("VGM score that sends a tile to the VLM (default 0.5)")
    )
    all_tiles: bool | None = field(default=None, metadata=_help("ask the VLM about every tile"))
    dask_address: str | None = field(
        default=None, metadata=_help("existing Dask scheduler, e.g. tcp://10.0.0.5:8786")
    )
    workers: int | None = field(
        default=None, metadata=_help("local Dask worker processes (default: in-process)")
    )
    overwrite: bool = field(default=False, metadata=_help("replace results of another model"))
