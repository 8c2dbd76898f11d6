"""The GSD options of the commands that tile (``tile``, ``run``) and read plain images."""

from __future__ import annotations

import argparse

GSD_HELP = (
    "metres per pixel of the tiles: auto (the model's GSD, default), native (the before "
    "scene's own pixels) or a number; both dates are resampled to it"
)
ALLOW_HELP = (
    "tile imagery coarser than the model accepts (e.g. 10 m Sentinel-2 for a 0.5 m model) "
    "instead of refusing it"
)
IMAGE_GSD_HELP = (
    "the images' metres per pixel (e.g. 0.3 for WHU-CD): resampled to the model's GSD, masks "
    "and objects returned on the images' grid (default: fed as they are)"
)


def add_tile_gsd_args(p: argparse.ArgumentParser) -> None:
    """``--gsd auto|native|METRES`` and ``--allow-any-gsd``."""
    p.add_argument("--gsd", default=None, metavar="auto|native|METRES", help=GSD_HELP)
    p.add_argument("--allow-any-gsd", action="store_true", help=ALLOW_HELP)


def add_image_gsd_arg(p: argparse.ArgumentParser) -> None:
    """``--gsd METRES`` of plain images (``predict``, ``ask``)."""
    p.add_argument("--gsd", default=None, metavar="METRES", help=IMAGE_GSD_HELP)
