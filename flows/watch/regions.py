"""The regions file of ``changevg watch``: which catalogs to watch, for which AOIs, against what.

A TOML file with one ``[[region]]`` table per region::

    [[region]]
    name = "coachella"
    catalog = "https://planetarycomputer.microsoft.com/api/stac/v1"   # any STAC API
    collection = "naip"
    aoi = "-116.2,33.88,-116.18,33.9"      # or a GeoJSON file (relative to this file)
    before = "2022-01-01/2022-12-31"       # the baseline window
    # optional:
    grace_hours = 48                       # wait this long for the rest of a partial acquisition
    model = "/models/changevg"             # a ChangeVG model folder (default: the shipped model)

Everything is checked when the file is read, before any catalog is asked, and every error names
the file, the region and the field.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from catalogs.aoi import parse_aoi, parse_window
from catalogs.errors import InputError

__all__ = ["REQUIRED", "Region", "load_regions"]

#: The fields every ``[[region]]`` needs.
REQUIRED = ("name", "catalog", "collection", "aoi", "before")
_OPTIONAL = ("grace_hours", "model")


@dataclass(frozen=True)
class Region:
    """One watched region, validated.

    Attributes:
        name: Region name: the inventory partition, the state file and the output folder.
        catalog: STAC API root URL.
        collection: Collection id searched for new acquisitions.
        aoi: ``minx,miny,maxx,maxy`` in lon/lat, or an absolute GeoJSON path.
        before: The baseline window every new acquisition is compared with.
        grace_hours: How long a partial acquisition waits for the rest; ``None``: the watch's.
        model: ChangeVG model folder; ``None``: the shipped model.
    """

    name: str
    catalog: str
    collection: str
    aoi: str
    before: str
    grace_hours: float | None = None
    model: str | None = None


def load_regions(path: str | Path) -> list[Region]:
    """Read and check a regions file.

    Raises:
        InputError: the file is missing or not TOML, has no ``[[region]]`` tables, a region
            lacks a field or has a bad value, or two regions share a name.
    """
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"regions file {path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(
            f"regions file {path} is not valid TOML ({exc}); write one [[region]] table per "
            f"region with {', '.join(REQUIRED)}"
        ) from None
    extra = sorted(set(doc) - {"region"})
    if extra:
        raise InputError(f"regions file {path}: unknown top-level key(s) {extra}; only [[region]]")
    tables = doc.get("region")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise InputError(
            f"regions file {path} has no [[region]] tables; add one per region with "
            f"{', '.join(REQUIRED)}"
        )
    regions = [_region(path, k, table) for k, table in enumerate(tables, start=1)]
    seen: dict[str, int] = {}
    for k, region in enumerate(regions, start=1):
        if region.name in seen:
            raise InputError(
                f"regions file {path}: regions #{seen[region.name]} and #{k} are both named "
                f"{region.name!r}; names must be unique (they key the state and the output "
                "folders)"
            )
        seen[region.name] = k
    return regions


def _region(path: Path, k: int, table: Mapping[str, object]) -> Region:
    from flows.inventory.schema import check_name

    label = f"regions file {path}: region #{k}" + (
        f" ({table['name']!r})" if isinstance(table.get("name"), str) else ""
    )
    missing = [f for f in REQUIRED if f not in table]
    if missing:
        raise InputError(
            f"{label} lacks {', '.join(missing)}; every [[region]] needs {', '.join(REQUIRED)}"
        )
    unknown = sorted(set(table) - set(REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise InputError(
            f"{label}: unknown field(s) {unknown}; known: {', '.join(REQUIRED + _OPTIONAL)}"
        )
    for key in (*REQUIRED, "model"):
        if key in table and not (isinstance(table[key], str) and str(table[key]).strip()):
            raise InputError(f"{label}: {key} must be a non-empty string, got {table[key]!r}")
    try:
        name = check_name("region name", str(table["name"]))
    except InputError as exc:
        raise InputError(f"{label}: {exc}") from None
    catalog = str(table["catalog"]).strip()
    if not catalog.startswith(("http://", "https://")):
        raise InputError(
            f"{label}: catalog {catalog!r} is not a STAC API URL (http:// or https://)"
        )
    aoi = str(table["aoi"]).strip()
    if "," not in aoi:  # not a bbox: a GeoJSON file, relative to the regions file
        aoi = str((path.parent / aoi).resolve())
    try:
        parse_aoi(aoi)
        parse_window(str(table["before"]), name="before")
    except InputError as exc:
        raise InputError(f"{label}: {exc}") from None
    grace = table.get("grace_hours")
    if grace is not None and (
        isinstance(grace, bool) or not isinstance(grace, int | float) or grace < 0
    ):
        raise InputError(f"{label}: grace_hours must be a number of hours >= 0, got {grace!r}")
    model = table.get("model")
    return Region(
        name=name,
        catalog=catalog,
        collection=str(table["collection"]).strip(),
        aoi=aoi,
        before=str(table["before"]).strip(),
        grace_hours=float(grace) if grace is not None else None,
        model=str((path.parent / str(model)).resolve()) if model else None,
    )
