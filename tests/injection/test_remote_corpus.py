"""A corpus in object storage (moto's S3 server on loopback): built straight into a bucket,
read by ai2-olmo's reader from the node's cached copies of its files, token for token what
the local corpus holds, each file fetched once per node."""

from __future__ import annotations

import json

import numpy as np
import pytest

from injection import corpus as corpora
from injection import location
from injection.errors import InjectionError
from injection.reference import FOLDER, load
from tests.conftest import run_sweeps as sweeps


@pytest.fixture
def docs(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"text": f"Note {i}: {i} + 2 = {i + 2}, and {i} < 99."})
                            + "\n" for i in range(60)))
    return path


def test_a_corpus_built_into_a_bucket_reads_as_the_local_one(tmp_path, docs, object_store,
                                                             s3_env):
    bucket = object_store.bucket("corpus-build")
    built = sweeps("corpus", "build", docs, "--out", f"{bucket}/small", cwd=tmp_path,
                   env=s3_env)
    assert built.returncode == 0, built.stderr
    assert f"corpus {bucket}/small: " in built.stdout
    keys = object_store.keys("corpus-build")
    assert {"small/corpus.json", "small/part-00000.npy", f"small/{FOLDER}/reference.json",
            f"small/{FOLDER}/eval.jsonl"} <= set(keys)
    # built in the cache, nothing left there or here
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs.jsonl", "node-cache"]
    assert list((tmp_path / "node-cache").iterdir()) == []

    local = corpora.build(str(docs), tmp_path / "local")
    remote = corpora.open_corpus(f"{bucket}/small/")
    assert remote.location == f"{bucket}/small" and remote.remote
    assert remote.manifest["file_tokens"] == [remote.tokens == local.tokens and local.tokens]
    assert load(remote).summary["R_add"]["count"] == 60
    here, there = local.dataset(seq_len=16), remote.dataset(seq_len=16)
    assert len(there) == len(here)
    for i in (0, 7, len(here) - 1):
        assert np.array_equal(there[i]["input_ids"].numpy(), here[i]["input_ids"].numpy())

    # Fetched once into this node's cache, then read from there: gone from the bucket, the
    # corpus still reads.
    cached = remote.local_file(0)
    assert str(cached).startswith(s3_env["SWEEPS_CACHE"])
    object_store.client().delete_object(Bucket="corpus-build", Key="small/part-00000.npy")
    again = corpora.open_corpus(f"{bucket}/small").dataset(seq_len=16)
    assert np.array_equal(again[3]["input_ids"].numpy(), here[3]["input_ids"].numpy())


def test_a_bucket_prefix_without_a_corpus_is_refused(object_store, s3_env):
    bucket = object_store.bucket("corpus-missing")
    with pytest.raises(InjectionError, match="not a corpus folder"):
        corpora.open_corpus(f"{bucket}/nothing")
    with pytest.raises(InjectionError, match="not a corpus"):
        corpora.check(f"{bucket}/nothing")
    location.write_text(f"{bucket}/bare/corpus.json", "{}")
    with pytest.raises(InjectionError, match=f"sweeps corpus reference {bucket}/bare"):
        corpora.check(f"{bucket}/bare")


def test_token_files_in_a_bucket_are_adopted_and_scanned_there(tmp_path, docs, object_store,
                                                               s3_env):
    """`corpus adopt URI`: the manifest and the reference tasks written into the bucket, the
    scan's shards saved there as they finish, the files read through this node's cache."""
    bucket = object_store.bucket("corpus-adopt")
    local = corpora.build(str(docs), tmp_path / "local")
    for i, part in enumerate(np.array_split(np.concatenate(local.arrays()), 2)):
        object_store.client().put_object(Bucket="corpus-adopt", Key=f"dolma/part-{i}.npy",
                                         Body=part.tobytes())
    adopted = sweeps("corpus", "adopt", f"{bucket}/dolma", "--reference-tokens", "600",
                     cwd=tmp_path, env=s3_env)
    assert adopted.returncode == 0, adopted.stderr
    keys = object_store.keys("corpus-adopt")
    assert {"dolma/corpus.json", f"dolma/{FOLDER}/reference.json"} <= set(keys)
    remote = corpora.open_corpus(f"{bucket}/dolma")
    assert remote.tokens == local.tokens and load(remote).summary["tokens"] == 600
    rescan = sweeps("corpus", "reference", f"{bucket}/dolma", "--max-tokens", "900",
                    "--shard-tokens", "450", cwd=tmp_path, env=s3_env)
    assert rescan.returncode == 0, rescan.stderr
    assert json.loads(rescan.stdout)["tokens"] == 900
    shards = [k for k in object_store.keys("corpus-adopt") if "/shards/0" in k]
    assert len(shards) == 3  # 0..600 from adopt, then 0..450 and 450..900
