"""Existing OLMo-format token files made a corpus: `sweeps corpus adopt DIR|URI`.

OLMo's own pre-tokenised data (Dolma's `.npy` parts) is what `corpus build` writes: raw token
ids without a header, EOS after every document. Adopting a folder of such files writes the
`corpus.json` that names them, after checking that they can be this tokenizer's: whole tokens
of its dtype, ids inside its vocabulary, documents ending in its EOS (read from the head of
each file, so a bucket of hundreds of GB is checked in seconds).
"""

from __future__ import annotations

import numpy as np

from injection import location as locations
from injection import tokenizer as tokenizers
from injection.corpus import MANIFEST, Corpus, manifest
from injection.errors import InjectionError

SUFFIX = ".npy"
SAMPLE_BYTES = 4 << 20  # read from the head of each file for the checks
NUMPY_MAGIC = b"\x93NUMPY"


def adopt(folder: str, tokenizer: str = tokenizers.DEFAULT) -> Corpus:
    """Write `folder`/corpus.json for the `.npy` token files in it (in name order)."""
    where = locations.normalise(folder)
    try:
        sizes = locations.files(where)
    except OSError as err:
        raise InjectionError(f"{folder}: cannot be listed ({err}); check the path or URI and "
                             "this machine's credentials")
    if MANIFEST in sizes:
        raise InjectionError(f"{folder}: already a corpus ({MANIFEST} exists); delete it to "
                             "adopt the files again")
    names = sorted(name for name in sizes if name.endswith(SUFFIX))
    if not names:
        raise InjectionError(f"{folder}: no {SUFFIX} token files in it (OLMo's format: raw "
                             "token ids, EOS after each document)")
    tok = tokenizers.load(tokenizer)
    itemsize = tok.dtype.itemsize
    eos = 0
    for name in names:
        if sizes[name] % itemsize:
            raise InjectionError(f"{name}: {sizes[name]} bytes is not a whole number of "
                                 f"{tok.dtype.name} tokens, the dtype of tokenizer "
                                 f"{tok.name!r}; give the tokenizer the files were made with "
                                 "(--tokenizer)")
        head = locations.read_range(locations.join(where, name), 0,
                                    min(sizes[name], SAMPLE_BYTES))
        if head.startswith(NUMPY_MAGIC):
            raise InjectionError(f"{name}: a numpy file with a header (np.save), not OLMo's "
                                 "raw token format; write the array with array.tofile(path)")
        ids = np.frombuffer(head[: len(head) // itemsize * itemsize], dtype=tok.dtype)
        if len(ids) and int(ids.max()) >= tok.vocab_size:
            raise InjectionError(f"{name}: token id {int(ids.max())} is outside the vocabulary "
                                 f"of tokenizer {tok.name!r} ({tok.vocab_size} ids): the files "
                                 "were made with another tokenizer; give it with --tokenizer")
        eos += int(np.count_nonzero(ids == tok.eos_token_id))
    if eos == 0:
        raise InjectionError(f"{folder}: no EOS token ({tok.eos_token_id}) of tokenizer "
                             f"{tok.name!r} at the head of any file: OLMo's format ends every "
                             "document with it; give the tokenizer the files were made with")
    locations.write_text(locations.join(where, MANIFEST), manifest(
        names, [sizes[name] // itemsize for name in names], tok, None,
        {"kind": "adopted", "name": where}))
    return Corpus(where)
