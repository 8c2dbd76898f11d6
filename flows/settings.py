"""One typed settings object for a whole run, loaded from a TOML file and CLI overrides.

Each section is the options class of the package that uses it, so defaults live in one place:
``[search]`` → :class:`catalogs.search.SearchOptions`, ``[tiles]`` → :class:`tiling.TileOptions`,
``[predict]`` → :class:`flows.predict.PredictOptions`.

Example ``changevg.toml``::

    max_aoi_km2 = 500
    [search]
    timeout_s = 60
    retries = 6
    [tiles]
    tile_size = 256
    overlap = 32
    register = "correct"
    [predict]
    threshold = 0.4
    vlm_batch = 8
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalogs.errors import InputError
from catalogs.search import SearchOptions
from flows.predict import PredictOptions
from tiling import TileOptions

CONFIG_ENV = "CHANGEVG_CONFIG"


@dataclass(frozen=True)
class Settings:
    """Everything configurable about a monitoring run.

    Attributes:
        max_aoi_km2: AOIs larger than this are refused (a guard against accidental huge runs).
        search: STAC search options (timeouts, retries, paging, signing hook).
        tiles: Tiling options (tile size, overlap, registration, nodata policy).
        predict: Model options (screening threshold, batch sizes, device).
    """

    max_aoi_km2: float = 2500.0
    search: SearchOptions = field(default_factory=SearchOptions)
    tiles: TileOptions = field(default_factory=TileOptions)
    predict: PredictOptions = field(default_factory=PredictOptions)

    @classmethod
    def load(cls, path: str | Path | None = None) -> Settings:
        """Settings from ``path``, else from ``$CHANGEVG_CONFIG``, else the defaults."""
        path = path or os.environ.get(CONFIG_ENV)
        if not path:
            return cls()
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise InputError(f"settings file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"settings file {path} is not valid TOML: {exc}") from None
        return cls().with_overrides(**data)

    def with_overrides(self, **values: Any) -> Settings:
        """A copy with top-level values and section tables (dicts) replaced; None is ignored."""
        changes: dict[str, Any] = {}
        for key, value in values.items():
            if value is None:
                continue
            if key not in {f.name for f in dataclasses.fields(self)}:
                raise InputError(
                    f"unknown setting {key!r}; known: max_aoi_km2, search, tiles, predict"
                )
            current = getattr(self, key)
            if dataclasses.is_dataclass(current) and isinstance(value, dict):
                changes[key] = _replace(current, key, value)
            else:
                changes[key] = value
        return dataclasses.replace(self, **changes)


def _replace(options: Any, section: str, values: dict[str, Any]) -> Any:
    known = {f.name for f in dataclasses.fields(options)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(f"unknown setting(s) {unknown} in [{section}]; known: {sorted(known)}")
    try:
        return dataclasses.replace(options, **{k: v for k, v in values.items() if v is not None})
    except (TypeError, ValueError) as exc:
        raise InputError(f"invalid [{section}] setting: {exc}") from None


GSD_CHOICES = ("auto", "native")


def tile_gsd(
    tiles: TileOptions,
    gsd: str | float | None = "auto",
    *,
    model: str | Path | None = None,
    allow_any_gsd: bool = False,
) -> TileOptions:
    """``tiles`` with the GSD the tiles are made at and the source GSDs accepted.

    Args:
        tiles: The tiling options (e.g. ``Settings.tiles``).
        gsd: ``"auto"`` (the model's GSD, from its folder's ``config.json``), ``"native"``
            (the before scene's own pixel grid), or metres per pixel. ``None``: the settings
            file's ``[tiles] gsd`` if it sets one, else ``"auto"``.
        model: The model folder whose GSD contract applies (default: the shipped model).
        allow_any_gsd: Accept imagery coarser than the model accepts (``--allow-any-gsd``).

    Raises:
        InputError: ``gsd`` is neither ``auto``, ``native`` nor a positive number, or the
            model folder's GSD settings are invalid.
    """
    from changevg.gsd import check_gsd, read_model_gsd

    contract = read_model_gsd(model)
    if gsd is None:
        gsd = tiles.gsd if tiles.gsd is not None else "auto"
    if isinstance(gsd, str) and gsd.strip().lower() in GSD_CHOICES:
        target = contract.gsd if gsd.strip().lower() == "auto" else None
    else:
        try:
            target = check_gsd(gsd, name="--gsd")
        except InputError as exc:
            raise InputError(f"{exc}; or 'auto' (the model's) or 'native'") from None
    accepted = None if allow_any_gsd else contract.range
    return dataclasses.replace(tiles, gsd=target, gsd_range=accepted)
