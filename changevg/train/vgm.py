"""``changevg train vgm``: the vision-guided module with segmentation + caption + change losses."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from changevg.data import DatasetError, PairRecord, pairs_from_records, read_changeimti
from changevg.eval.vgm import evaluate_vgm
from changevg.train._augment import AugmentOptions
from changevg.train._data import pair_batch
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
from changevg.vgm import VGMConfig, VisionGuidedModule
from changevg.vocab import CaptionVocab

log = logging.getLogger(__name__)

PRESETS = {"tiny": VGMConfig.tiny, "mit-b0": VGMConfig.mit_b0, "mit-b1": VGMConfig.mit_b1}
RECIPE_NAME = "training.json"


def load_pairs(path: str | Path, images_root: str | Path | None = None) -> list[PairRecord]:
    """Pairs with masks from a ChangeIMTI file (the VGM needs a change mask per pair)."""
    pairs = pairs_from_records(read_changeimti(path, images_root=images_root))
    usable = [p for p in pairs if p.mask is not None and p.captions]
    if not usable:
        raise DatasetError(f"{path}: no pair has both a change mask and captions")
    if len(usable) < len(pairs):
        log.warning(
            "%s: %d of %d pairs lack a mask or captions and are not used",
            path,
            len(pairs) - len(usable),
            len(pairs),
        )
    return usable


def _caption_ids(vocab: CaptionVocab, pairs: list[PairRecord], max_len: int, rng) -> torch.Tensor:
    ids = [vocab.encode(p.captions[rng.integers(len(p.captions))], max_len) for p in pairs]
    width = max(len(i) for i in ids)
    return torch.tensor([i + [vocab.pad_id] * (width - len(i)) for i in ids])


def train_vgm(
    train: str | Path,
    *,
    out: str | Path,
    images_root: str | Path | None = None,
    val: str | Path | None = None,
    config: VGMConfig | str = "tiny",
    options: TrainOptions | None = None,
    resume: bool = True,
    progress: bool | None = None,
    augment: AugmentOptions | None = None,
) -> Path:
    """Train the VGM on a ChangeIMTI dataset with masks; write the model folder to ``out``.

    ``augment`` re-photographs, rescales, flips and date-swaps every training pair on the fly
    (:mod:`changevg.train._augment`), drawn from the seed, epoch and step (resumable); pairs
    with a ``change_type`` raster also train the change-type channel (``config.change_type``).

    Resumable: a checkpoint in ``out/checkpoint`` (every ``checkpoint_every`` steps and at each
    epoch end) is picked up by the next call with the same arguments.

    Returns:
        ``out``, holding ``vgm_config.json``, ``vocab.json``, ``model.safetensors`` and
        ``training.json`` (the exact recipe and loss history).
    """
    options = options or TrainOptions()
    out = Path(out)
    seed_everything(options.seed)
    if options.threads:
        torch.set_num_threads(options.threads)
    device = pick_device(options.device)
    pairs = load_pairs(train, images_root)
    val_pairs = load_pairs(val, images_root) if val else []
    vocab = CaptionVocab.build(c for p in pairs for c in p.captions)
    if isinstance(config, str):
        if config not in PRESETS:
            raise ValueError(f"unknown VGM config {config!r}; choose from {sorted(PRESETS)}")
        config = PRESETS[config]()
    config = config.replace(vocab_size=len(vocab))
    model = VisionGuidedModule(config, vocab).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=options.lr, weight_decay=options.weight_decay
    )
    steps_per_epoch = -(-len(pairs) // options.batch_size)
    total = steps_per_epoch * options.epochs
    if options.max_steps:
        total = min(total, options.max_steps)
    scheduler = cosine_schedule(optimizer, total, options.warmup)
    ckpt = out / "checkpoint"
    state = TrainerState(history=[])
    if resume and ckpt.exists():
        model = VisionGuidedModule.from_pretrained(ckpt, device=device).train()
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=options.lr, weight_decay=options.weight_decay
        )
        state = load_checkpoint(ckpt, optimizer)
        scheduler = cosine_schedule(optimizer, total, options.warmup, done=state.step)
        log.info("resuming from %s at step %d of %d", ckpt, state.step, total)
    model.train()
    bar = tqdm(
        total=total,
        initial=state.step,
        desc="train vgm",
        unit="step",
        disable=None if progress is None else not progress,
    )
    step = 0
    for epoch in range(options.epochs):
        rng = np.random.default_rng([options.seed, epoch, 1])
        for idx in batches(
            epoch_order(len(pairs), seed=options.seed, epoch=epoch), options.batch_size
        ):
            captions_rng_draw = _caption_ids(
                vocab, [pairs[i] for i in idx], config.max_caption_len, rng
            )
            if step < state.step:  # already done before the interruption
                step += 1
                continue
            if step >= total:
                break
            aug_rng = np.random.default_rng([options.seed, epoch, step, 2])
            batch = pair_batch([pairs[i] for i in idx], augment=augment, rng=aug_rng)
            if augment is not None:
                drawn = [c[int(aug_rng.integers(len(c)))] for c in batch["captions"]]
                ids = [vocab.encode(c, config.max_caption_len) for c in drawn]
                width = max(len(i) for i in ids)
                captions_rng_draw = torch.tensor(
                    [i + [vocab.pad_id] * (width - len(i)) for i in ids]
                )
            kind = batch.get("change_type")
            with autocast(device):
                output = model(
                    batch["before"].to(device),
                    batch["after"].to(device),
                    caption_ids=captions_rng_draw.to(device),
                )
                losses = model.loss(
                    output,
                    mask=batch["mask"].to(device),
                    caption_ids=captions_rng_draw.to(device),
                    changed=batch["changed"].to(device),
                    change_type=None if kind is None else kind.to(device),
                )
            optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            state.step = step
            record = {k: round(float(v.detach()), 4) for k, v in losses.items()}
            state.history.append({"step": step, "epoch": epoch, **record})
            bar.update(1)
            bar.set_postfix(loss=record["total"], seg=record["seg"], cap=record["caption"])
            if step % options.checkpoint_every == 0:
                save_checkpoint(ckpt, model.save_pretrained, optimizer, state)
        if step >= total:
            break
        save_checkpoint(ckpt, model.save_pretrained, optimizer, state)
        if val_pairs:
            metrics = evaluate_vgm(model, val_pairs, batch_size=options.batch_size)
            log.info(
                "epoch %d val: change F1 %.3f, building MAE %.3f, road MAE %.3f",
                epoch,
                metrics["classification"]["f1"],
                metrics["building"]["mae"],
                metrics["road"]["mae"],
            )
            model.train()
    bar.close()
    model.save_pretrained(out)
    recipe = {
        "train": str(train),
        "val": str(val) if val else None,
        "config": config.to_dict(),
        "options": options.to_dict(),
        "augment": None if augment is None else dataclasses.asdict(augment),
        "pairs": len(pairs),
        "steps": state.step,
        "final_loss": state.history[-1] if state.history else None,
        "history": state.history,
    }
    if val_pairs:
        recipe["val_metrics"] = evaluate_vgm(model, val_pairs, batch_size=options.batch_size)
    (out / RECIPE_NAME).write_text(json.dumps(recipe, indent=2))
    shutil.rmtree(ckpt, ignore_errors=True)  # finished: nothing left to resume
    return out
