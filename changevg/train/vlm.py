"""``changevg train vlm``: instruction tuning of the ChangeVG VLM on ChangeIMTI conversations.

Two recipes, one loop:

- **with a base checkpoint** (``base=`` a local Qwen2.5-VL-Instruct folder): LoRA on every linear
  layer of the language model (rank 8, alpha 16, lr 1e-4, cosine, warm-up 0.1, 1 epoch — the
  paper's settings), VGM frozen or trainable;
- **without one** (the shipped default): a small Qwen2.5-VL-architecture model with a tokenizer
  built here from the dataset's text, all language/vision weights trained from scratch.

The VGM (trained first with ``changevg train vgm``) is quoted in every prompt, as text and as
embeddings at the ``<|vgm_pad|>`` slots. A frozen VGM is run once over all pairs up front and its
outputs are cached, so each step pays only for the VLM.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import replace
from dataclasses import replace as dc_replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from changevg.data import DatasetError, Record, read_changeimti
from changevg.train._data import load_image, to_tensor
from changevg.train._drills import DRILL_CLASSES, DrillCounts
from changevg.train._drills import copy_drills as _copy_drills
from changevg.train._loop import (
    TrainerState,
    TrainOptions,
    autocast,
    batches,
    cosine_schedule,
    epoch_order,
    load_checkpoint,
    pick_device,
    save_checkpoint,
    seed_everything,
)
from changevg.train._numbers import add_number_tokens as _add_number_tokens
from changevg.vgm import VisionGuidedModule

log = logging.getLogger(__name__)

TRAINABLE_NAME = "trainable.safetensors"
VLM_DEFAULTS = TrainOptions(epochs=1, batch_size=8, lr=1e-4, warmup=0.1)
SCRATCH_DEFAULTS = TrainOptions(epochs=4, batch_size=16, lr=2e-3, warmup=0.05)
TINY_LM = {
    "hidden": 192,
    "layers": 3,
    "heads": 4,
    "kv_heads": 2,
    "vision_hidden": 64,
    "vision_depth": 2,
    "vision_heads": 2,
}


def _corpus(records: list[Record], descriptions: dict[str, Any]) -> list[str]:
    from changevg.vlm.prompts import format_vgm_text

    texts = [t for r in records for turn in r.turns for t in (turn.question, turn.answer)]
    texts += [format_vgm_text(d.caption, d.counts, d.cells) for d in descriptions.values()]
    return texts


@torch.inference_mode()
def _run_vgm(vgm: VisionGuidedModule, records: list[Record], batch_size: int, progress):
    """VGM description and (unprojected) embedding tokens of every distinct pair."""
    from changevg.vlm.model import vgm_tokens

    keys = sorted({r.pair_key for r in records})
    by_key = {r.pair_key: r for r in records}
    descriptions, tokens = {}, {}
    device = next(vgm.parameters()).device
    for chunk in tqdm(
        list(batches(list(range(len(keys))), batch_size)),
        desc="vgm cache",
        disable=None if progress is None else not progress,
    ):
        recs = [by_key[keys[i]] for i in chunk]
        before = to_tensor([load_image(r.before) for r in recs]).to(device)
        after = to_tensor([load_image(r.after) for r in recs]).to(device)
        for i, d, t in zip(
            chunk,
            vgm.describe(before, after),
            vgm_tokens(vgm(before, after)).float().cpu(),
            strict=True,
        ):
            descriptions[keys[i]] = d
            tokens[keys[i]] = t
    return descriptions, tokens


def pack_by_pair(records: list[Record]) -> list[Record]:
    """One conversation per image pair holding every distinct question asked about it.

    The images (and the VGM block) then go through the model once for all of a pair's tasks,
    about five times less work per answer than one record per task.
    """
    groups: dict[str, list[Record]] = {}
    for rec in records:
        groups.setdefault(rec.pair_key, []).append(rec)
    packed = []
    for recs in groups.values():
        turns: dict[str, Any] = {}
        for rec in recs:
            for turn in rec.turns:
                turns.setdefault(turn.question, turn)
        packed.append(
            dc_replace(
                recs[0], id=f"{recs[0].id}-packed", turns=tuple(turns.values()), task="packed"
            )
        )
    return packed


def _conversation(record: Record, vgm_text: str | None, rng: np.random.Generator | None = None):
    """Chat messages of a record; ``rng`` shuffles the turns (each task gets to go first)."""
    from changevg.vlm.prompts import build_messages

    turns = list(record.turns)
    if rng is not None:
        turns = [turns[i] for i in rng.permutation(len(turns))]
    *history, last = turns
    return build_messages(
        last.question,
        vgm_text=vgm_text,
        history=[(t.question, t.answer) for t in history],
        answer=last.answer,
        vgm_tokens=vgm_text is not None,
    )


def build_scratch_model(
    records: list[Record],
    vgm: VisionGuidedModule,
    descriptions,
    *,
    vocab_size: int = 2000,
    processor: Any = None,
    **sizes: Any,
):
    """Tokenizer, processor and a randomly initialised small ChangeVG model with ``vgm``.

    ``processor`` reuses an existing tokenizer/processor (when resuming a run).
    """
    from changevg.vlm.configs import tiny_config
    from changevg.vlm.model import ChangeVGForConditionalGeneration
    from changevg.vlm.processor import ChangeVGProcessor, build_image_processor
    from changevg.vlm.tokenizer import build_tokenizer

    if processor is None:
        tokenizer = build_tokenizer(_corpus(records, descriptions), vocab_size=vocab_size)
        processor = ChangeVGProcessor(
            build_image_processor(), tokenizer, fine_grid=vgm.config.fine_grid
        )
    tokenizer = processor.tokenizer
    config = tiny_config(
        len(tokenizer),
        tokenizer=tokenizer,
        vgm=vgm,
        vgm_embed_dim=vgm.config.embed_dim,
        fine_grid=vgm.config.fine_grid,
        **{**TINY_LM, **sizes},
    )
    return ChangeVGForConditionalGeneration(config, vgm=vgm), processor


def _save_trainable(model: torch.nn.Module, processor: Any) -> Any:
    """A ``save_model`` for :func:`save_checkpoint`: trainable weights + the processor."""
    from safetensors.torch import save_file

    def save(folder: Path) -> None:
        state = {
            n: p.detach().contiguous().cpu() for n, p in model.named_parameters() if p.requires_grad
        }
        save_file(state, str(folder / TRAINABLE_NAME))
        processor.save_pretrained(folder / "processor")

    return save


def _load_trainable(model: torch.nn.Module, folder: Path) -> None:
    from safetensors.torch import load_file

    state = load_file(str(folder / TRAINABLE_NAME))
    params = dict(model.named_parameters())
    missing = [n for n, p in params.items() if p.requires_grad and n not in state]
    if missing or any(n not in params for n in state):
        raise ValueError(
            f"{folder / TRAINABLE_NAME} does not match the model being trained; "
            "remove the checkpoint folder or train into another --out"
        )
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value)


def train_vlm(
    train: str | Path,
    *,
    out: str | Path,
    vgm: str | Path,
    images_root: str | Path | None = None,
    base: str | Path | None = None,
    init: str | Path | None = None,
    freeze_vgm: bool = True,
    lora_rank: int = 8,
    pack: bool = True,
    copy_drills: float = 0.0,
    drill_counts: DrillCounts = "uniform",
    drill_classes: Sequence[str] = DRILL_CLASSES,
    number_tokens: bool = False,
    options: TrainOptions | None = None,
    resume: bool = True,
    progress: bool | None = None,
) -> Path:
    """Instruction-tune ChangeVG on a ChangeIMTI file and write the model folder to ``out``.

    Args:
        train: ChangeIMTI JSON (conversations about image pairs).
        out: Output folder (a complete ChangeVG model folder, plus ``training.json``).
        vgm: Folder of a trained VGM (``changevg train vgm``).
        images_root: Folder the image paths are relative to (default: the JSON's folder).
        base: Local Qwen2.5-VL-Instruct folder; with it LoRA is trained, without it a small
            model is trained from scratch.
        init: A ChangeVG folder to continue training from (a second stage of the scratch
            recipe: same tokenizer, all weights); the VGM ``vgm`` replaces the one inside it
            (it must have the same architecture).
        freeze_vgm: Keep the VGM's weights fixed (its outputs are then cached).
        lora_rank: LoRA rank (with ``base``).
        pack: Train on one conversation per pair with all its questions, in a shuffled order
            (see :func:`pack_by_pair`), instead of one conversation per record.
        copy_drills: Share of pairs that also get a copy drill, a short-answer conversation
            with a redrawn VGM hint (see :mod:`changevg.train._drills`); ``0`` for none.
        drill_counts: How the drills' counts are drawn: ``"uniform"`` (0..20 buildings),
            ``"data"`` (the hints of other pairs with a change) or ``"wide"`` (0..99).
        drill_classes: The classes whose counts drills redraw; the others keep each pair's
            own hint and answer.
        number_tokens: Give each number 10..99 a token of its own (from-scratch recipe only;
            see :mod:`changevg.train._numbers`).
        options: Optimisation settings; defaults depend on the recipe (see module docstring).
        resume: Continue from ``out/checkpoint`` if a previous run left one (written every
            ``checkpoint_every`` steps and at each epoch end; same arguments expected).
    """
    from changevg.vlm.io import load_changevg, save_changevg
    from changevg.vlm.lora import apply_lora, merge_lora
    from changevg.vlm.prompts import format_vgm_text

    if number_tokens and base:
        raise ValueError(
            "number_tokens is for the from-scratch recipe; a real Qwen2.5-VL tokenizer is kept"
        )
    options = options or (VLM_DEFAULTS if base else SCRATCH_DEFAULTS)
    out = Path(out)
    seed_everything(options.seed)
    if options.threads:
        torch.set_num_threads(options.threads)
    device = pick_device(options.device)
    records = read_changeimti(train, images_root=images_root)
    vgm_module = VisionGuidedModule.from_pretrained(vgm, device=device)
    descriptions, tokens = _run_vgm(vgm_module, records, options.batch_size, progress)
    corpus_records = records
    if pack:
        records = pack_by_pair(records)
    texts = {k: format_vgm_text(d.caption, d.counts, d.cells) for k, d in descriptions.items()}
    hints = [texts[r.pair_key] for r in records]
    if copy_drills:
        drills = _copy_drills(
            records,
            descriptions,
            fraction=copy_drills,
            seed=options.seed,
            counts=drill_counts,
            classes=drill_classes,
        )
        records = records + [r for r, _ in drills]
        hints += [h for _, h in drills]
        log.info("%d copy drills added to %d conversations", len(drills), len(hints) - len(drills))
    if base:
        model, processor = load_changevg(base=base, vgm=vgm_module, device=device)
        model = apply_lora(model, rank=lora_rank, train_vgm=not freeze_vgm)
    elif init:
        from changevg.vlm.model import vgm_spec

        model, processor = load_changevg(init, device=device)
        # the VGM given replaces the one inside ``init`` (e.g. retrained, or with a change-type
        # channel): its embeddings must keep the width the projector reads
        if vgm_spec(vgm_module) == model.config.changevg.get("vgm"):
            model.vgm.load_state_dict(vgm_module.state_dict())
        else:
            _check_vgm_width(model.vgm, vgm_module)
            model.vgm = vgm_module.to(next(model.parameters()).device)
        model.config.changevg = {**model.config.changevg, "vgm": vgm_spec(vgm_module)}
        for p in model.parameters():
            p.requires_grad_(True)
        for p in model.vgm.parameters():
            p.requires_grad_(not freeze_vgm)
    else:
        ckpt_processor = None
        if resume and (out / "checkpoint" / "processor").exists():
            from changevg.vlm.processor import ChangeVGProcessor

            ckpt_processor = ChangeVGProcessor.from_folder(out / "checkpoint" / "processor")
        model, processor = build_scratch_model(
            corpus_records, vgm_module, descriptions, processor=ckpt_processor
        )
        for p in model.vgm.parameters():
            p.requires_grad_(not freeze_vgm)
    if number_tokens:
        added = _add_number_tokens(model, processor.tokenizer)
        log.info("%d whole-number tokens added (vocabulary %d)", added, len(processor.tokenizer))
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=options.lr, weight_decay=options.weight_decay)
    total = -(-len(records) // options.batch_size) * options.epochs
    if options.max_steps:
        total = min(total, options.max_steps)
    ckpt = out / "checkpoint"
    state = TrainerState(history=[])
    if resume and (ckpt / TRAINABLE_NAME).exists():
        _load_trainable(model, ckpt)
        state = load_checkpoint(ckpt, optimizer)
        log.info("resuming from %s at step %d of %d", ckpt, state.step, total)
    scheduler = cosine_schedule(optimizer, total, options.warmup, done=state.step)
    save_model = _save_trainable(model, processor)
    bar = tqdm(
        total=total,
        initial=state.step,
        desc="train vlm",
        unit="step",
        disable=None if progress is None else not progress,
    )
    step = 0
    for epoch in range(options.epochs):
        for idx in batches(
            epoch_order(len(records), seed=options.seed, epoch=epoch), options.batch_size
        ):
            if step >= total:
                break
            if step < state.step:  # done before the interruption
                step += 1
                continue
            recs = [records[i] for i in idx]
            pairs = [(load_image(r.before), load_image(r.after)) for r in recs]
            convs = [
                _conversation(r, hints[i], np.random.default_rng([options.seed, epoch, i]))
                for i, r in zip(idx, recs, strict=True)
            ]
            batch = processor.encode_pairs(
                pairs, convs, add_generation_prompt=False, with_labels=True
            )
            if freeze_vgm:
                batch.pop("vgm_before")
                batch.pop("vgm_after")
                batch["vgm_embeds"] = torch.stack([tokens[r.pair_key] for r in recs])
            batch = batch.to(device)
            with autocast(device):
                loss = model(**batch).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            state.step = step
            state.history.append({"step": step, "epoch": epoch, "loss": round(loss.item(), 4)})
            bar.update(1)
            bar.set_postfix(loss=round(loss.item(), 4))
            if step % options.checkpoint_every == 0:
                save_checkpoint(ckpt, save_model, optimizer, state)
            if step % 50 == 0:
                log.info("step %d/%d loss %.4f", step, total, loss.item())
        save_checkpoint(ckpt, save_model, optimizer, state)
    bar.close()
    model.eval()
    if base:
        model = merge_lora(model)
    save_changevg(model, processor, out)
    recipe = {
        "train": str(train),
        "vgm": str(vgm),
        "base": str(base) if base else None,
        "init": str(init) if init else None,
        "recipe": "lora" if base else "scratch",
        "lora_rank": lora_rank if base else None,
        "freeze_vgm": freeze_vgm,
        "options": replace(options).to_dict(),
        "records": len(corpus_records),
        "conversations": len(records),
        "packed": pack,
        "copy_drills": copy_drills,
        "drill_counts": drill_counts if copy_drills else None,
        "drill_classes": list(drill_classes) if copy_drills else None,
        "number_tokens": number_tokens,
        "steps": state.step,
        "loss_first": state.history[0] if state.history else None,
        "loss_last": state.history[-1] if state.history else None,
    }
    recipe["history"] = state.history
    (out / "training.json").write_text(json.dumps(recipe, indent=2))
    shutil.rmtree(ckpt, ignore_errors=True)  # finished: nothing left to resume
    return out


def _check_vgm_width(old: torch.nn.Module, new: torch.nn.Module) -> None:
    """A replacement VGM must give embeddings as wide as the one the projector was trained on."""
    widths = [getattr(getattr(m, "config", None), "embed_dim", None) for m in (old, new)]
    if widths[0] != widths[1]:
        raise DatasetError(
            f"--vgm gives {widths[1]}-wide embeddings but --init's projector reads {widths[0]}: "
            "train the VGM with the same --config-preset as the model's"
        )
