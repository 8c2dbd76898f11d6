"""``changevg convert``: bring published weights into this project's model folders.

``changevg convert change-agent CHECKPOINT.pth --vocab vocab.json [--args ARGS.json] --out DIR``
converts the ChangeVG authors' VGM (Change-Agent's MCI model) with
:func:`changevg.mci.convert.convert_change_agent`. Bad input exits with code 2.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["add_convert_commands", "cmd_convert_change_agent"]


def cmd_convert_change_agent(args: argparse.Namespace) -> int:
    """Convert, then print where the folder is and what was ignored."""
    from changevg.mci.convert import REPORT_NAME, convert_change_agent

    out = convert_change_agent(args.checkpoint, args.vocab, args=args.args, out=args.out)
    report = json.loads((Path(out) / REPORT_NAME).read_text())
    cfg = report["config"]
    print(f"wrote {out} (load it with --vgm {out} or VisionGuidedModule.from_pretrained)")
    print(
        f"  {cfg['network']}: widths {cfg['embed_dims']}, {cfg['n_layers']} caption layers, "
        f"{cfg['decoder_layers']} decoder layers, feature_dim {cfg['feature_dim']}, "
        f"vocabulary {cfg['vocab_size']}, n_heads {cfg['n_heads']} ({report['args_source']})"
    )
    ignored = report["ignored"]
    example = f", e.g. {', '.join(ignored[:3])}" if ignored else ""
    print(f"  {len(ignored)} checkpoint keys ignored (never used by the forward pass){example}")
    if report["filled"]:
        print(f"  {len(report['filled'])} BatchNorm counters absent, set to 0")
    if report["ignored_entries"]:
        print(f"  other checkpoint entries not converted: {report['ignored_entries']}")
    print(f"  details: {Path(out) / REPORT_NAME}")
    return 0


def add_convert_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``convert`` (with its ``change-agent`` subcommand) on the top-level parser."""
    p = sub.add_parser("convert", help="convert published checkpoints into model folders")
    csub = p.add_subparsers(dest="convert_command", required=True)
    c = csub.add_parser(
        "change-agent",
        help="Change-Agent's MCI model (the ChangeVG authors' VGM) -> a VGM folder",
        description=(
            "Reads a checkpoint with encoder_dict, encoder_trans_dict and decoder_dict using "
            "torch.load(weights_only=True) only, infers the architecture from the weights and "
            "writes a folder for --vgm / VisionGuidedModule.from_pretrained."
        ),
    )
    c.add_argument("checkpoint", type=Path, help="the authors' checkpoint (MCI_model.pth)")
    c.add_argument("--vocab", type=Path, required=True, help="the authors' vocab.json")
    c.add_argument(
        "--args",
        type=Path,
        default=None,
        help="JSON with the settings weights cannot tell (n_heads, dropout, backbone heads); "
        "default: the authors' predict.py defaults",
    )
    c.add_argument("--out", type=Path, required=True, help="folder to write")
    c.set_defaults(func=cmd_convert_change_agent)
