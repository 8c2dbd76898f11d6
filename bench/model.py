"""ChangeVG inference throughput: tile pairs per second, VGM screen vs. full model vs. plain Qwen.

Two modes.

**Default** (a saved ChangeVG folder, CPU unless ``--device cuda``): loads ``--model`` (default:
the shipped ``changevg/weights/default``; a missing folder is an error, exit 2) or, with
``--tiny``, a tiny randomly initialised ChangeVG.  On ``--pairs`` 256x256 tile pairs (synthetic:
textured ground with new "buildings" and a "road" on half of them; or the first pairs of a
ChangeIMTI JSON given with ``--data``) it times, at each ``--batches`` size,

- ``screen``: ``ChangeVG.screen`` (the VGM alone: mask, objects, caption, change score);
- ``predict``: ``ChangeVG.predict_batch`` with all 5 tasks (VGM + 5 batched ``generate`` calls,
  stopping at the model's end token as in real use).

One warm-up call, then the median of ``--repeat`` calls; pairs/s = pairs / median seconds.

**Random weights** (``--config qwen2.5-vl-7b --random-weights``, needs a GPU): builds the
Qwen2.5-VL-7B architecture in bf16 on the GPU (vocab 152064; tokenizer built here from a small
corpus, its ids all < 152064) with a random mit-b1 VGM, and times on the same batch of pairs:

- ``plain_generate``: ``Qwen2_5_VLForConditionalGeneration.generate`` (the parent class, no VGM,
  sharing ChangeVG's weights) on the 2-image caption prompt, inputs already on the GPU;
- ``plain_e2e``: the same plus the processor (image preprocessing and tokenising);
- ``changevg``: ChangeVG's batched path: VGM ``describe`` then ``ask`` with the VGM text and
  VGM tokens in the prompt (preprocessing included).

Each generates exactly 48 new tokens (``min_new_tokens = max_new_tokens = 48``: random weights
would otherwise stop at random).  DESIGN §5 anchor for ``plain_generate`` on one H100: 20.6
pairs/s at batch 32, 22.8 at 128.  ``--allow-cpu --tiny`` runs this mode with ``tiny_config``
and a tiny VGM on the CPU, to test the script.

    .venv/bin/python bench/model.py [--model DIR | --tiny] [--batches 1 16] [--pairs 32]
    .venv/bin/python bench/model.py --config qwen2.5-vl-7b --random-weights --device cuda \\
        --batches 1 8 32 128 --threads 8          # on a GPU machine (~16 GB of weights)
    .venv/bin/python bench/model.py --config qwen2.5-vl-7b --random-weights --allow-cpu --tiny \\
        --batches 2 --threads 1                   # smoke test here

Results: ``bench/results/model.json`` (default) or ``bench/results/model_random.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench._common import fmt, format_table, machine_info, median, write_json  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
NEW_TOKENS = 48
CAPTIONS = [
    "a new road is built in the center",
    "two buildings have been constructed at the top left corner",
    "there is no change",
    "many villas appear along the road at the lower right corner",
    "the bareland is replaced by houses and a road",
] * 4


# --- inputs -------------------------------------------------------------------------------------


def synthetic_pairs(n: int, size: int = 256, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Textured ground; every other pair gains a few bright roofs and a grey road (uint8 CHW)."""
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(n):
        noise = rng.normal(0, 1, (3, size // 8, size // 8))
        base = np.kron(noise, np.ones((8, 8)))[:, :size, :size] * 18 + [[[95]], [[105]], [[80]]]
        before = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
        after = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
        if i % 2 == 0:
            for _ in range(rng.integers(1, 5)):
                y, x = rng.integers(0, size - 24, 2)
                h, w = rng.integers(8, 24, 2)
                after[:, y : y + h, x : x + w] = 235
            r = int(rng.integers(20, size - 20))
            after[:, r : r + 6, :] = 128
        pairs.append((before, after))
    return pairs


def data_pairs(path: str, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The first ``n`` pairs of a ChangeIMTI JSON (image paths relative to its folder)."""
    from changevg.imageio import read_pair

    root = Path(path).resolve().parent
    records = json.loads(Path(path).read_text())
    seen, pairs = set(), []
    for rec in records:
        key = tuple(rec["images"][:2])
        if key not in seen:
            seen.add(key)
            pairs.append(read_pair(*(root / p for p in key)))
        if len(pairs) == n:
            break
    return pairs


# --- models -------------------------------------------------------------------------------------


def build_random(tiny: bool, device: torch.device, dtype: torch.dtype | None = None):
    """A randomly initialised ChangeVG (7B + mit-b1 VGM, or tiny) and its processor."""
    from changevg.vgm import VGMConfig, VisionGuidedModule
    from changevg.vlm.configs import qwen25_vl_7b_config, tiny_config, with_changevg
    from changevg.vlm.model import ChangeVGForConditionalGeneration
    from changevg.vlm.processor import ChangeVGProcessor, build_image_processor
    from changevg.vlm.prompts import prompt_corpus
    from changevg.vlm.tokenizer import build_tokenizer
    from changevg.vocab import CaptionVocab

    torch.manual_seed(0)
    # whole words (as Qwen's 152k vocabulary has them), so prompt lengths are close to Qwen's
    tok = build_tokenizer([*CAPTIONS, *prompt_corpus()] * 4, vocab_size=4000)
    vgm = VisionGuidedModule(
        VGMConfig.tiny() if tiny else VGMConfig.mit_b1(), CaptionVocab.build(CAPTIONS)
    )
    dim, grid = vgm.config.embed_dim, vgm.config.fine_grid
    if tiny:
        config = tiny_config(152_064, tokenizer=tok, vgm=vgm, vgm_embed_dim=dim, fine_grid=grid)
    else:
        config = with_changevg(
            qwen25_vl_7b_config(152_064), tok, vgm_embed_dim=dim, fine_grid=grid, vgm=vgm
        )
    assert len(tok) <= config.text_config.vocab_size
    dtype = dtype or (torch.bfloat16 if device.type == "cuda" else torch.float32)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with device:
            model = ChangeVGForConditionalGeneration(config, vgm=vgm.to(device))
    finally:
        torch.set_default_dtype(previous)
    processor = ChangeVGProcessor(build_image_processor(), tok, fine_grid=grid)
    return model.to(device, dtype).eval(), processor


def plain_qwen(model):
    """The parent class ``Qwen2_5_VLForConditionalGeneration`` sharing ``model``'s weights."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    with torch.device("meta"):
        plain = Qwen2_5_VLForConditionalGeneration(model.config)
    plain.model, plain.lm_head = model.model, model.lm_head
    plain.generation_config = model.generation_config
    return plain.eval()


# --- timing -------------------------------------------------------------------------------------


def timed(fn, repeat: int, device: torch.device) -> dict:
    """One warm-up call, then ``repeat`` timed calls; returns the median and all seconds."""

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    fn()
    seconds = []
    for _ in range(repeat):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        seconds.append(time.perf_counter() - t0)
    return {"seconds": round(median(seconds), 4), "all_seconds": [round(s, 4) for s in seconds]}


def bench_saved(args, device: torch.device) -> tuple[dict, list[dict]]:
    from changevg.model import DEFAULT_MODEL, ChangeVG

    if args.tiny:
        model, processor = build_random(True, device)
        cvg, name = ChangeVG(model, processor, name="tiny-random"), "tiny random (untrained)"
    else:
        folder = Path(args.model or DEFAULT_MODEL)
        if not folder.is_dir():
            print(
                f"bench/model.py: no model folder at {folder}. The shipped default is written by "
                "its training recipe; pass --model DIR, or --tiny for a tiny random model.",
                file=sys.stderr,
            )
            raise SystemExit(2)
        cvg, name = ChangeVG.load(folder, device=device), str(folder)
    pairs = data_pairs(args.data, args.pairs) if args.data else synthetic_pairs(args.pairs)
    rows = []
    for bs in args.batches:
        for case, fn in (
            ("screen", lambda bs=bs: cvg.screen(pairs, batch_size=bs)),
            ("predict", lambda bs=bs: cvg.predict_batch(pairs, batch_size=bs)),
        ):
            r = {"case": case, "batch": bs, "pairs": len(pairs), **timed(fn, args.repeat, device)}
            r["pairs_per_s"] = round(len(pairs) / r["seconds"], 3)
            rows.append(r)
            print(json.dumps(r), flush=True)
    n_params = sum(p.numel() for p in cvg.model.parameters())
    n_vgm = sum(p.numel() for p in cvg.vgm.parameters()) if cvg.vgm is not None else 0
    info = {"model": name, "params_m": round(n_params / 1e6, 2), "vgm_params_m": n_vgm / 1e6}
    return info, rows


def bench_random(args, device: torch.device) -> tuple[dict, list[dict]]:
    from changevg.vlm.answer import ask, describe_pairs
    from changevg.vlm.prompts import build_messages

    model, processor = build_random(args.tiny, device)
    model.generation_config.min_new_tokens = NEW_TOKENS  # ``ask`` passes max_new_tokens only
    plain = plain_qwen(model)
    gen = {"max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS, "do_sample": False}
    rows = []
    for bs in args.batches:
        pairs = synthetic_pairs(bs, seed=bs)

        def encode_plain(pairs=pairs):
            conv = [build_messages("caption", vgm_text=None)] * len(pairs)
            batch = processor.encode_pairs(pairs, conv)
            return {k: v for k, v in batch.items() if not k.startswith("vgm_")}

        inputs = {k: v.to(device) for k, v in encode_plain().items()}
        plain_len = inputs["input_ids"].shape[1]

        def plain_e2e(encode_plain=encode_plain, plain_len=plain_len):
            out = plain.generate(**{k: v.to(device) for k, v in encode_plain().items()}, **gen)
            assert out.shape[1] - plain_len == NEW_TOKENS

        def changevg(pairs=pairs):
            ask(model, processor, pairs, "caption", vgm=describe_pairs(model, processor, pairs))

        descs = describe_pairs(model, processor, pairs)
        conv = [build_messages("caption", vgm_text=d) for d in descs]
        batch = processor.encode_pairs(pairs, conv).to(device)
        cvg_len = batch["input_ids"].shape[1]  # and check that ``ask`` makes 48 tokens:
        assert model.generate(**batch, max_new_tokens=NEW_TOKENS).shape[1] == cvg_len + NEW_TOKENS
        r = {"batch": bs, "prompt_tokens_plain": plain_len, "prompt_tokens_changevg": cvg_len}
        for case, fn in (
            ("plain_generate", lambda inputs=inputs: plain.generate(**inputs, **gen)),
            ("plain_e2e", plain_e2e),
            ("changevg", changevg),
        ):
            t = timed(fn, args.repeat, device)
            r[f"{case}_s"], r[f"{case}_all_s"] = t["seconds"], t["all_seconds"]
            r[f"{case}_pairs_per_s"] = round(bs / t["seconds"], 3)
        r["ratio_changevg_vs_plain_generate"] = round(
            r["changevg_pairs_per_s"] / r["plain_generate_pairs_per_s"], 3
        )
        r["ratio_changevg_vs_plain_e2e"] = round(
            r["changevg_pairs_per_s"] / r["plain_e2e_pairs_per_s"], 3
        )
        rows.append(r)
        print(json.dumps(r), flush=True)
    info = {
        "model": ("tiny_config" if args.tiny else "qwen2.5-vl-7b") + " random weights",
        "vgm": "tiny" if args.tiny else "mit-b1",
        "dtype": str(next(model.parameters()).dtype),
        "attn_implementation": model.config._attn_implementation,
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "new_tokens": NEW_TOKENS,
        "anchor_plain_generate_h100": {"32": 20.6, "128": 22.8},
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["peak_gpu_mem_gb"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    return info, rows


# --- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", help="ChangeVG folder (default: changevg/weights/default)")
    p.add_argument("--tiny", action="store_true", help="tiny random model instead")
    p.add_argument("--config", choices=["qwen2.5-vl-7b"], help="random-weights architecture")
    p.add_argument("--random-weights", action="store_true")
    p.add_argument("--allow-cpu", action="store_true", help="random-weights mode on CPU (--tiny)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--batches", "--batch", type=int, nargs="+", default=None)
    p.add_argument("--pairs", type=int, default=32, help="pairs per timed call (default mode)")
    p.add_argument("--data", help="ChangeIMTI JSON to read pairs from (default mode)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--out", help="JSON output path")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    random_mode = bool(args.config or args.random_weights)
    if random_mode and not (args.config and args.random_weights):
        p.error("--config qwen2.5-vl-7b goes with --random-weights (no 7B weights exist here)")
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda but torch sees no CUDA device")
    if random_mode and device.type != "cuda" and not (args.allow_cpu and args.tiny):
        print(
            "bench/model.py: the 7B random-weights benchmark needs a GPU (--device cuda). "
            "To test the code path on CPU use --allow-cpu --tiny (tiny_config, not 7B).",
            file=sys.stderr,
        )
        return 2
    args.batches = args.batches or ([1, 8, 32] if random_mode else [1, 16])
    if random_mode:
        info, rows = bench_random(args, device)
        name = "model_random_tiny.json" if args.tiny else "model_random.json"
        cols = [("batch", "batch", fmt("d")), ("prompt", "prompt_tokens_plain", fmt("d"))]
        cols += [(f"{c} p/s", f"{c}_pairs_per_s", fmt(".2f"))
                 for c in ("plain_generate", "plain_e2e", "changevg")]  # fmt: skip
        cols += [("cvg/plain", "ratio_changevg_vs_plain_generate", fmt(".3f"))]
    else:
        info, rows = bench_saved(args, device)
        name = "model.json"
        cols = [("case", "case", fmt("")), ("batch", "batch", fmt("d"))]
        cols += [("pairs", "pairs", fmt("d")), ("median s", "seconds", fmt(".3f"))]
        cols += [("pairs/s", "pairs_per_s", fmt(".2f"))]
    payload = {
        "benchmark": "model",
        "args": vars(args),
        "device": str(device),
        "threads": torch.get_num_threads(),
        **info,
        "machine": machine_info(),
        "results": rows,
    }
    out = write_json(args.out or RESULTS / name, payload)
    print(f"\n{info['model']} on {device} ({torch.get_num_threads()} threads)")
    print(format_table(rows, cols))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
