"""The model commands of the ``changevg`` CLI: train, eval, predict, ask."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from catalogs.errors import InputError


def _train_options(args: argparse.Namespace, **defaults):
    from changevg.train import TrainOptions

    given = {
        k: getattr(args, k)
        for k in (
            "epochs",
            "batch_size",
            "lr",
            "seed",
            "device",
            "max_steps",
            "threads",
            "checkpoint_every",
        )
    }
    return TrainOptions(**{**defaults, **{k: v for k, v in given.items() if v is not None}})


def cmd_train_vgm(args: argparse.Namespace) -> int:
    from changevg.train import train_vgm
    from changevg.train._augment import AugmentOptions
    from changevg.train.vgm import PRESETS

    config = PRESETS[args.config_preset](
        change_type=args.change_type,
        dice_loss_weight=args.dice,
        road_edge_relabel=not args.no_road_edge_relabel,
    )
    out = train_vgm(
        args.data,
        out=args.out,
        images_root=args.images,
        val=args.val,
        config=config,
        options=_train_options(args),
        resume=not args.restart,
        augment=AugmentOptions() if args.augment == "real" else None,
    )
    print(f"VGM written to {out}")
    return 0


def cmd_train_vlm(args: argparse.Namespace) -> int:
    from changevg.train.vlm import SCRATCH_DEFAULTS, VLM_DEFAULTS, train_vlm

    defaults = (VLM_DEFAULTS if args.base else SCRATCH_DEFAULTS).to_dict()
    out = train_vlm(
        args.data,
        out=args.out,
        vgm=args.vgm,
        images_root=args.images,
        base=args.base,
        init=args.init,
        freeze_vgm=not args.train_vgm,
        lora_rank=args.lora_rank,
        copy_drills=args.copy_drills,
        drill_counts=args.drill_counts,
        drill_classes=tuple(args.drill_classes),
        number_tokens=args.number_tokens,
        resume=not args.restart,
        options=_train_options(args, **defaults),
    )
    print(f"ChangeVG model written to {out}")
    return 0


def _load_model(args: argparse.Namespace):
    from changevg.model import ChangeVG

    return ChangeVG.load(
        args.model, base=args.base, adapter=args.adapter, vgm=args.vgm, device=args.device
    )


def cmd_eval(args: argparse.Namespace) -> int:
    from changevg.data import read_changeimti
    from changevg.eval.model import evaluate_model, write_metrics

    if Path(args.data).is_dir():
        return _eval_folder(args)

    read_changeimti(args.data, images_root=args.images)  # bad data fails before the model loads
    metrics = evaluate_model(
        _load_model(args),
        args.data,
        images_root=args.images,
        batch_size=args.batch_size,
        limit=args.limit,
        predictions=args.predictions,
    )
    write_metrics(metrics, args.out)
    cap, cls, loc = metrics["caption"], metrics["classification"], metrics["localization"]
    cnt = metrics["counting"]
    print(f"pairs: {metrics['n']['pairs']}  unparsed answers: {metrics['unparsed']}")
    print(f"caption S*m {cap['S*m']}  BLEU-4 {cap['BLEU-4']}  CIDEr-D {cap['CIDEr-D']}")
    print(f"yes/no F1 {cls['f1']}  accuracy {cls['accuracy']}")
    print(f"count MAE building {cnt['building']['mae']}  road {cnt['road']['mae']}")
    print(f"grid-cell F1 {loc['f1']}")
    print(f"metrics written to {args.out}")
    return 0


def _eval_folder(args: argparse.Namespace) -> int:
    from changevg.eval.folder import evaluate_change_folder, read_change_folder
    from changevg.eval.model import write_metrics
    from changevg.gsd import check_gsd

    gsd = None if args.gsd is None else check_gsd(args.gsd, name="--gsd")
    read_change_folder(args.data)  # a bad folder fails before the model loads
    metrics = evaluate_change_folder(
        _load_model(args),
        args.data,
        labels=args.labels,
        gsd=gsd,
        window=args.window,
        vlm=not args.vgm_only,
        batch_size=args.batch_size,
        predictions=args.predictions,
    )
    write_metrics(metrics, args.out)
    print(format_folder_metrics(metrics))
    print(f"metrics written to {args.out}")
    return 0


def format_folder_metrics(metrics: dict) -> str:
    """The lines ``changevg eval`` prints for a change folder."""
    n, px = metrics["n"], metrics["pixel"]
    lines = [
        f"tiles: {n['tiles']} ({n['changed_tiles']} changed) from {n['pairs']} pairs, "
        f"labels {metrics['labels']}",
        "changed pixels (VGM mask): P {} R {} F1 {} IoU {}".format(
            *(_fmt(px[k]) for k in ("precision", "recall", "f1", "iou"))
        ),
    ]
    for who, tile in metrics["tile"].items():
        lines.append(
            f"tiles ({who}): F1 {_fmt(tile['f1'])}  changed found {_fmt(tile['changed_found'])}"
            f"  unchanged called unchanged {_fmt(tile['unchanged_called_unchanged'])}"
        )
    for cls, by in metrics["count"].items():
        lines.append(
            f"{cls} count MAE: " + "  ".join(f"{who} {_fmt(s['mae'])}" for who, s in by.items())
        )
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _read_pair(args: argparse.Namespace):
    from changevg.imageio import ImagePairError, read_pair

    try:
        return read_pair(args.before, args.after)
    except ImagePairError as exc:
        raise InputError(str(exc)) from None


def _image_gsd(args: argparse.Namespace) -> float | None:
    """``--gsd`` of plain images, checked against the model's range before the model loads
    (``None``: not given)."""
    from changevg.gsd import check_gsd, read_model_gsd

    if args.gsd is None:
        return None
    gsd = check_gsd(args.gsd, name="--gsd")
    contract = read_model_gsd(None if args.base else args.model, adapter=args.adapter)
    contract.check(gsd, what=f"--gsd {gsd:g}", flag="no --gsd (images fed as they are)")
    return gsd


def cmd_predict(args: argparse.Namespace) -> int:
    gsd = _image_gsd(args)
    before, after = _read_pair(args)
    (result,) = _load_model(args).predict_batch([(before, after)], gsd=gsd)
    doc = result.to_dict()
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(f"changed: {result.changed} (score {result.change_score:.2f})")
        print(f"caption: {result.caption}")
        print(f"new buildings: {result.counts['building']}  new roads: {result.counts['road']}")
        print(f"where: {', '.join(result.locations) or 'No change'}")
        if result.unparsed:
            print(f"unparsed answers (raw kept in --json): {', '.join(result.unparsed)}")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from changevg.vlm.prompts import classify_question

    gsd = _image_gsd(args)
    before, after = _read_pair(args)
    model = _load_model(args)
    if args.question:
        answer = model.ask(before, after, args.question, gsd=gsd)
        if classify_question(args.question) is None:
            print(
                "(free-text question: not one of the trained tasks, answer unchecked)",
                file=sys.stderr,
            )
        print(answer)
        return 0
    history: list[tuple[str, str]] = []
    print("Ask about the pair; an empty line or Ctrl-D ends the conversation.")
    while True:
        try:
            question = input("you> ").strip()
        except EOFError:
            break
        if not question:
            break
        answer = model.ask(before, after, question, history=history, gsd=gsd)
        history.append((question, answer))
        print(f"changevg> {answer}")
    return 0


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="ChangeVG model folder (default: the shipped model)")
    p.add_argument("--base", help="Qwen2.5-VL-Instruct folder (with --adapter and --vgm)")
    p.add_argument("--adapter", help="LoRA adapter folder for --base")
    p.add_argument("--vgm", help="VGM folder for --base")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])


def add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="training set (ChangeIMTI JSON)")
    p.add_argument("--val", help="validation set (ChangeIMTI JSON)")
    p.add_argument("--images", help="folder the image paths are relative to (default: JSON's)")
    p.add_argument("--out", required=True, type=Path, help="output model folder")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--max-steps", type=int, help="stop after this many steps (smoke runs)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--checkpoint-every", type=int, help="steps between resumable checkpoints")
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
