"""Dialogue agreement: does ``ChangeVG.ask`` give ``predict_batch``'s answer however it is asked?

For ``--pairs`` tile pairs of a demo-size synthetic region (or a ChangeIMTI file via ``--data``)
it asks every task

- in held-out wordings (:data:`HELD_OUT`: written for this benchmark before the last change to
  the question router ``changevg.vlm.prompts.classify_question``, never used to tune it), as
  the first turn (:data:`DEVELOPMENT` holds earlier rounds, whose misses did tune it — house,
  street; "tell me about the changes", "what's new", "is anything different";
  ``--wordings development`` measures those);
- in the same wordings as the 2nd and 3rd turn of a dialogue whose earlier turns are other tasks
  in random order, with the model's own earlier answers as history;

and counts, per task, how often the reply equals ``predict_batch``'s answer for that task. It
also asks out-of-scope questions (:data:`OUT_OF_SCOPE`) and counts honest replies (the fixed
"what I can answer" reply) against a number or a grid cell.

    python -m bench.dialogue [--model DIR] [--pairs 24] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

DEVELOPMENT: dict[str, tuple[str, ...]] = {
    "caption": (
        "Describe what is different between the two pictures.",
        "Can you summarise the changes?",
        "What changed here?",
        "Give me a short caption of the change.",
        # round 2 (held out until the router's second change, which their misses tuned)
        "What's new in the second image compared with the first?",
        "Tell me about the changes.",
        "Explain what has changed.",
        "Summarize the differences between the images.",
    ),
    "yes_no": (
        "Did anything change between these two images?",
        "Has the area changed?",
        "Is there any change in buildings or roads?",
        "Were there changes? Yes or no.",
        # round 2
        "Is anything different?",
        "Has there been any change?",
        "Do the images show any change to buildings or roads?",
        "Did the buildings or roads change? Answer yes or no.",
    ),
    "count_building": (
        "How many houses were built?",
        "What is the number of new buildings?",
        "Count the new buildings, please.",
        "How many buildings appeared?",
    ),
    "count_road": (
        "How many roads were built?",
        "What is the number of new roads?",
        "Count the new roads.",
        "How many new streets are there?",
    ),
    "locate": (
        "Where did the change occur?",
        "Which part of the image changed?",
        "In which areas are the changes?",
        "Where are the new buildings?",
    ),
}

HELD_OUT: dict[str, tuple[str, ...]] = {
    "caption": (  # round 3, written before the router's second change
        "What happened between the two dates?",
        "Could you describe the differences?",
        "Give a description of what changed.",
        "What is different now?",
    ),
    "yes_no": (  # round 3
        "Is there a difference between the images?",
        "Any changes?",
        "Did the area change at all?",
        "Has something been built or removed?",
    ),
    "count_building": (
        "How many homes were constructed?",
        "Number of new buildings?",
        "How many buildings have been added?",
        "How many new houses can you see?",
    ),
    "count_road": (
        "How many roads have been added?",
        "Number of new roads?",
        "How many new streets were built?",
        "How many roads were constructed?",
    ),
    "locate": (
        "Where are the changes?",
        "In which part of the image did things change?",
        "Where were the new houses built?",
        "Which grid cells contain changes?",
    ),
}

OUT_OF_SCOPE = (
    "What colour are the roofs?",
    "Is it summer in the second image?",
    "Who owns these houses?",
    "What is the weather like?",
)


def _pairs(args: argparse.Namespace, tmp: Path) -> list[tuple[Path, Path]]:
    from changevg.data import pairs_from_records, read_changeimti

    if args.data is None:
        from flows.synthetic.dataset import make_dataset

        ds = make_dataset(tmp / "ds", regions=3, seed=0, size_km=1.0)  # ~demo-size area
        files = list(ds.files.values())
    else:
        files = [args.data]
    pairs = [p for f in files for p in pairs_from_records(read_changeimti(f))]
    random.Random(0).shuffle(pairs)
    return [(p.before, p.after) for p in pairs[: args.pairs]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="ChangeVG folder (default: the shipped model)")
    parser.add_argument("--data", type=Path, help="ChangeIMTI JSON (default: three 1 km regions)")
    parser.add_argument("--pairs", type=int, default=24)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--wordings", choices=["held-out", "development"], default="held-out")
    args = parser.parse_args(argv)

    import torch

    from changevg.model import ChangeVG
    from changevg.vlm.dialogue import OUT_OF_SCOPE_REPLY
    from changevg.vlm.prompts import TASKS

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        pairs = _pairs(args, Path(tmp))
        model = ChangeVG.load(args.model, device="cpu")
        results = model.predict_batch(pairs)
        rng = random.Random(1)
        agree = {t: {"first_turn": [0, 0], "later_turn": [0, 0]} for t in TASKS}
        honest = [0, 0]
        wordings = HELD_OUT if args.wordings == "held-out" else DEVELOPMENT
        for (before, after), result in zip(pairs, results, strict=True):
            for task in TASKS:
                want = result.answers[task]
                for wording in wordings[task]:
                    got = model.ask(before, after, wording)
                    agree[task]["first_turn"][0] += got == want
                    agree[task]["first_turn"][1] += 1
                others = [t for t in TASKS if t != task]
                rng.shuffle(others)
                history = [(o, result.answers[o]) for o in others[: rng.randint(1, 2)]]
                wording = rng.choice(wordings[task])
                got = model.ask(before, after, wording, history=history)
                agree[task]["later_turn"][0] += got == want
                agree[task]["later_turn"][1] += 1
            question = rng.choice(OUT_OF_SCOPE)
            honest[0] += model.ask(before, after, question) == OUT_OF_SCOPE_REPLY
            honest[1] += 1
    table = {
        t: {k: round(a / n, 3) if n else None for k, (a, n) in by.items()}
        for t, by in agree.items()
    }
    doc = {
        "model": str(args.model or "default"),
        "pairs": len(pairs),
        "wordings": args.wordings,
        "agreement": table,
        "out_of_scope_honest": round(honest[0] / honest[1], 3),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(f"{'task':15} first turn  later turn   ({len(pairs)} pairs, {args.wordings} wordings)")
    for task, row in table.items():
        print(f"{task:15} {row['first_turn']:>10} {row['later_turn']:>11}")
    print(f"out-of-scope questions answered honestly: {doc['out_of_scope_honest']}")
    if args.out:
        args.out.write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
