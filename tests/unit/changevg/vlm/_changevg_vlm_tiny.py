"""Tiny ChangeVG parts for the VLM tests: a stand-in VGM, a tokenizer, processor and model."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from functools import lru_cache  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from changevg.vlm.configs import tiny_config  # noqa: E402
from changevg.vlm.model import ChangeVGForConditionalGeneration, register_vgm  # noqa: E402
from changevg.vlm.processor import ChangeVGProcessor, build_image_processor  # noqa: E402
from changevg.vlm.tokenizer import build_tokenizer  # noqa: E402

CORPUS = [
    "A new road is built in the center.",
    "Two buildings have been constructed at the top left corner.",
    "There is no change.",
    "Many villas appear along the road at the lower right corner.",
    "The bareland is replaced by houses.",
    "Yes",
    "No",
] * 20

D = 32  # stand-in VGM width
G = 3


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models run fastest on one thread; two threads on a shared 2-core box thrash."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class StubVGM(nn.Module):
    """Deterministic stand-in for ``VisionGuidedModule``: a strided conv over the pair.

    Returns a ``VGMOutput``-like namespace with ``global_embed [B, D]`` and
    ``fine_embed [B, G*G, D]`` (fine tokens row-major), like the real module.
    """

    def __init__(self, embed_dim: int = D, fine_grid: int = G) -> None:
        super().__init__()
        self.config = {"embed_dim": embed_dim, "fine_grid": fine_grid}
        self.vocab = ["<pad>", "road", "building"]
        self.conv = nn.Conv2d(6, embed_dim, kernel_size=8, stride=8)
        self.fine_grid = fine_grid

    def forward(self, before, after, caption_ids=None):
        x = self.conv(torch.cat([before, after], dim=1) * 2 - 1)
        fine = nn.functional.adaptive_avg_pool2d(x, self.fine_grid).flatten(2).transpose(1, 2)
        return SimpleNamespace(global_embed=x.mean((2, 3)), fine_embed=fine)

    @torch.no_grad()
    def describe(self, before, after):
        """``VGMDescription``-like outputs: a change score from the mean absolute difference."""
        score = (after - before).abs().mean((1, 2, 3)).clamp(0, 1)
        return [
            SimpleNamespace(
                caption="a road is built" if s > 0.01 else "no change",
                change_score=float(s),
                changed=bool(s > 0.01),
                counts={"building": 0, "road": int(s > 0.01)},
                cells=["center"] if s > 0.01 else [],
                objects=[],
            )  # fmt: skip
            for s in score
        ]


register_vgm(
    "test.stub",
    lambda spec: StubVGM(**spec["config"]),
    lambda m: {"config": dict(m.config), "vocab": list(m.vocab)},
    StubVGM,
)


@lru_cache(maxsize=1)
def tokenizer():
    return build_tokenizer(CORPUS, vocab_size=600)


def processor(vgm_size: int | None = 64) -> ChangeVGProcessor:
    return ChangeVGProcessor(build_image_processor(), tokenizer(), fine_grid=G, vgm_size=vgm_size)


def model(seed: int = 0, *, with_vgm: bool = True, **kw) -> ChangeVGForConditionalGeneration:
    torch.manual_seed(seed)
    tok = tokenizer()
    vgm = StubVGM() if with_vgm else None
    cfg = tiny_config(len(tok), tokenizer=tok, vgm=vgm, vgm_embed_dim=D, fine_grid=G, **kw)
    return ChangeVGForConditionalGeneration(cfg, vgm=vgm).eval()


def pair(seed: int, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    before = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    after = before.copy()
    after[: size // 2, : size // 2] = 255 - after[: size // 2, : size // 2]
    return before, after
