"""Shared fixtures: small synthetic regions and the embedded STAC API on 127.0.0.1.

Nothing here talks to any other address; telemetry is off for every Prefect import.
"""

from __future__ import annotations

import json
import os
import tempfile

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# flows run against an ephemeral Prefect API whose database lives here, not in ~/.prefect
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="changevg-prefect-"))
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")  # busy CPUs

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_STAC = REPO.parent / "shared" / "data" / "stac"

BEFORE = "2022-01-01/2022-12-31"
AFTER = "2024-01-01/2024-12-31"


@pytest.fixture(scope="session")
def small_region(tmp_path_factory):
    """A 0.5 km synthetic region (seed 1), shared by the whole session; treat it read-only."""
    from catalogs.synth import synthesize_region

    return synthesize_region(tmp_path_factory.mktemp("region"), size_km=0.5, seed=1)


@pytest.fixture(scope="session")
def small_server(small_region) -> Iterator:
    """The small region served by a real STAC API (rustac) on 127.0.0.1."""
    from catalogs.server import StacServer

    with StacServer([small_region.root]) as server:
        yield server


@pytest.fixture(scope="session")
def small_pair(small_region, small_server):
    """The scene pair found for the small region through the served catalog."""
    from catalogs.pairing import search_pairs

    return search_pairs(
        small_server.url,
        collection=json.loads(small_region.collection_path.read_text())["id"],
        aoi=small_region.bbox_lonlat,
        before=BEFORE,
        after=AFTER,
    )


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """A ChangeIMTI set from three 0.6 km synthetic regions (train/val/test by region)."""
    from flows.synthetic.dataset import make_dataset

    return make_dataset(tmp_path_factory.mktemp("dataset"), regions=3, seed=7, size_km=0.6)


@pytest.fixture(scope="session")
def tiny_models(tiny_dataset, tmp_path_factory):
    """A VGM and a ChangeVG model trained for a few steps on ``tiny_dataset`` (not useful
    models: they exercise the training, saving and loading paths)."""
    import torch

    from changevg.train import TrainOptions, train_vgm
    from changevg.train.vlm import train_vlm

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("models")
    options = TrainOptions(epochs=1, batch_size=4, max_steps=2, checkpoint_every=1)
    vgm = train_vgm(tiny_dataset.files["train"], out=root / "vgm", options=options, progress=False)
    vlm = train_vlm(
        tiny_dataset.files["train"], out=root / "changevg", vgm=vgm, options=options, progress=False
    )
    return vgm, vlm
