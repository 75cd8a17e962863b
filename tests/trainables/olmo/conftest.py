"""What the OLMo trainable's tests share: a tiny real corpus, the cmp task, the 4M model."""

from __future__ import annotations

import json

import pytest
import torch

from injection import corpus as corpora
from injection.tasks import TaskSet, build_task


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: the tiny models here gain nothing from two, and on a shared 2-core
    machine two threads wait on each other (a 4M forward takes 0.03 s on one, up to 0.6 s on
    two under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> corpora.Corpus:
    """A few hundred tokens of real text, tokenised with the default OLMo tokenizer, with its
    reference tasks (as `sweeps corpus build` makes them)."""
    from injection.reference import make

    folder = tmp_path_factory.mktemp("olmo")
    docs = [f"Document {i}: the {i}th river is {i + 3} miles longer than the {i + 1}th one."
            for i in range(40)]
    (folder / "docs.jsonl").write_text("\n".join(json.dumps({"text": d}) for d in docs))
    return corpora.build(str(folder / "docs.jsonl"), folder / "corpus", prepare=make)


@pytest.fixture(scope="session")
def cmp_task() -> TaskSet:
    return build_task("cmp", 0)


@pytest.fixture(scope="session")
def initial():
    """The real 4M ladder model, freshly initialised, for sequences of up to 16 tokens."""
    from injection.tokenizer import load
    from trainables.olmo import model

    return model.build_model("4M", load(), 16, torch.device("cpu"), world_size=1, seed=0)
