"""A model on the real development pairs in ``../shared/data/real/``: the table of the README.

Runs :func:`changevg.eval.evaluate_change_folder` on each folder of the development set and prints
one row per (folder, windows) case:

- ``levircd`` — the four LEVIR-CD 256² crops (0.5 m; building change, roads not labelled);
- ``levircd@128`` — the same crops as sixteen 128² windows, fed at their own size: the only
  unchanged real examples the set has in number (six windows and one whole tile);
- ``dsifn`` — ten DSIFN pairs (≈2 m, *any* land-cover change labelled: a stress test, not a
  building benchmark; fed as they are unless ``--dsifn-gsd`` is given).

Columns: changed-pixel P/R/F1 of the VGM mask; tile-level F1, changed tiles found and unchanged
tiles called unchanged for the VLM's yes/no and for the VGM's score; building count MAE (VLM,
VGM). **Small sample**: 4 + 10 pairs — a direction, not a benchmark.

    python bench/real.py [--model DIR] [--out results.json] [--vgm-only]

Skips with a message (exit 0) when the development set is absent.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"
CASES = (
    ("levircd", "levircd_trainval", None),
    ("levircd@128", "levircd_trainval", 128),
    ("dsifn", "dsifn", None),
)


def _f(value: float | None) -> str:
    return "  n/a" if value is None else f"{value:5.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(ROOT / "changevg" / "weights" / "default"))
    parser.add_argument("--data", type=Path, default=REAL, help="the development set's folder")
    parser.add_argument("--out", type=Path, help="write every case's metrics as JSON")
    parser.add_argument("--vgm-only", action="store_true", help="score the VGM alone")
    parser.add_argument("--dsifn-gsd", type=float, help="DSIFN's GSD (resampled to the model's)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"bench/real.py: skipped: the development set {args.data} is absent")
        return 0

    import torch

    from changevg.eval.folder import evaluate_change_folder
    from changevg.model import ChangeVG

    torch.set_num_threads(args.threads)
    model = ChangeVG.load(args.model, device="cpu")
    results = {}
    head = f"{'case':12} {'tiles':>9} {'px P':>5} {'px R':>5} {'px F1':>5} | "
    head += "VLM: F1  found unch. | VGM: F1  found unch. | MAE vlm   vgm"
    print(f"model: {args.model}  (small sample: a direction, not a benchmark)")
    print(head)
    for name, folder, window in CASES:
        if not (args.data / folder).is_dir():
            print(f"{name:12} skipped: {args.data / folder} is absent")
            continue
        started = time.perf_counter()
        m = evaluate_change_folder(
            model,
            args.data / folder,
            window=window,
            gsd=args.dsifn_gsd if name == "dsifn" else None,
            vlm=not args.vgm_only,
            progress=False,
        )
        m["seconds"] = time.perf_counter() - started
        results[name] = m
        px, tiles, count = m["pixel"], m["tile"], m["count"]["building"]
        row = f"{name:12} {m['n']['tiles']:>3} ({m['n']['changed_tiles']:>2} ch)"
        row += f" {_f(px['precision'])} {_f(px['recall'])} {_f(px['f1'])} |"
        for who in ("vlm", "vgm"):
            t = tiles.get(who)
            if t is None:
                row += "      n/a          |"
                continue
            found, unchanged = t["changed_found"], t["unchanged_called_unchanged"]
            row += f"  {_f(t['f1'])} {_f(found)} {_f(unchanged)} |"
        vlm_mae = count.get("vlm", {}).get("mae")
        row += f" {_f(vlm_mae)} {_f(count['vgm']['mae'])}"
        print(row)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"model": args.model, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
