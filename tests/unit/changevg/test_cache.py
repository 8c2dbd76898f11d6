"""changevg.cache: model ids that follow the weights, and one loaded model per process."""

from __future__ import annotations

import pytest

from changevg.cache import cached_model, clear_cache, model_id
from changevg.model import DEFAULT_MODEL


def test_model_id_tracks_weights_not_metrics(tmp_path):
    import torch
    from safetensors.torch import save_file

    folder = tmp_path / "mymodel"
    folder.mkdir()
    (folder / "config.json").write_text('{"a": 1}')
    save_file({"w": torch.zeros(4)}, str(folder / "model.safetensors"))
    first = model_id(folder)
    assert first.startswith("mymodel-")
    (folder / "metrics_test.json").write_text("{}")
    assert model_id(folder) == first
    save_file({"w": torch.ones(4)}, str(folder / "model.safetensors"))
    assert model_id(folder) != first


def test_cached_model_loads_a_folder_once_per_device():
    clear_cache()
    first = cached_model(DEFAULT_MODEL, "cpu")
    assert cached_model(str(DEFAULT_MODEL), "cpu") is first  # a str and a Path are one key
    clear_cache()
    assert cached_model(DEFAULT_MODEL, "cpu") is not first
    clear_cache()


def test_cached_model_names_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        cached_model(tmp_path / "nowhere", "cpu")
