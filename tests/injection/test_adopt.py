"""`sweeps corpus adopt`: OLMo-format token files (here cut from the embedded corpus, as
Dolma's pre-tokenised parts are laid out) become a corpus that ai2-olmo's reader reads token
for token, with its reference tasks; files of another tokenizer or format are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from injection import corpus as corpora
from injection.adopt import adopt
from injection.errors import InjectionError
from tests.conftest import run_sweeps as sweeps
from tests.sweeps.test_cli import written

PARTS = 3


@pytest.fixture
def token_files(embedded_corpus, tmp_path):
    """The embedded corpus's first ~600K tokens as three raw .npy parts, cut at documents."""
    tokens = np.concatenate(embedded_corpus.arrays())[:600_000]
    eos = embedded_corpus.tokenizer.eos_token_id
    ends = np.flatnonzero(tokens == eos) + 1
    cuts = [ends[np.searchsorted(ends, len(tokens) * k // PARTS)] for k in range(1, PARTS)]
    folder = tmp_path / "dolma"
    folder.mkdir()
    for i, part in enumerate(np.split(tokens[: ends[-1]], cuts)):
        part.tofile(folder / f"part-{i:02d}-00000.npy")
    return folder, tokens[: ends[-1]]


def test_adopted_token_files_read_back_token_for_token(token_files, tmp_path):
    folder, tokens = token_files
    result = sweeps("corpus", "adopt", folder, "--reference-tokens", "200000", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"corpus {folder}: {len(tokens):,} tokens (uint16) in 3 file(s)" in result.stdout
    adopted = corpora.open_corpus(folder)
    assert adopted.manifest["source"] == {"kind": "adopted", "name": str(folder)}
    assert adopted.tokens == len(tokens) and len(adopted.file_tokens) == PARTS
    dataset = adopted.dataset(seq_len=64)
    read = np.concatenate([dataset[i]["input_ids"].numpy() for i in range(len(dataset))])
    # ai2-olmo drops each file's last partial chunk
    kept = np.concatenate([p[: len(p) // 64 * 64] for p in np.split(
        tokens, np.cumsum(adopted.file_tokens)[:-1])])
    assert np.array_equal(read, kept)
    reference = json.loads((folder / "reference-v2" / "reference.json").read_text())
    assert reference["tokens"] == 200_000 and reference["R_add"]["count"] > 0


@pytest.mark.parametrize("damage, tokenizer, says", [
    (None, "allenai_dolma2", "outside the vocabulary"),
    ("odd", None, "not a whole number of uint16 tokens"),
    ("header", None, "a numpy file with a header"),
    ("no-eos", None, "no EOS token"),
    ("empty", None, "no .npy token files"),
])
def test_files_of_another_tokenizer_or_format_are_refused(token_files, tmp_path, damage,
                                                          tokenizer, says):
    folder, tokens = token_files
    if damage == "odd":
        (folder / "part-01-00000.npy").write_bytes(b"\0" * 3)
    elif damage == "header":
        np.save(folder / "part-01-00000.npy", tokens[:100])
    elif damage == "no-eos":
        for path in folder.iterdir():
            np.arange(10, 500, dtype=np.uint16).tofile(path)
    elif damage == "empty":
        for path in folder.iterdir():
            path.unlink()
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(InjectionError, match=says):
        adopt(str(folder), *([tokenizer] if tokenizer else []))
    assert sorted(p.name for p in folder.iterdir()) == before  # no corpus.json


def test_adopt_on_the_command_line_exits_2_naming_the_fix(token_files, tmp_path):
    folder, _ = token_files
    result = sweeps("corpus", "adopt", folder, "--tokenizer", "allenai_dolma2", cwd=tmp_path)
    assert result.returncode == 2 and "--tokenizer" in result.stderr
    assert "Traceback" not in result.stderr and "corpus.json" not in written(folder)
