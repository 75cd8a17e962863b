"""The cluster path rehearsed on one machine with the real parts a cluster uses: a Ray cluster
of a head and two worker nodes (`ray start`), an S3-compatible object store on loopback
(moto's server), the MLflow tracking server with its login app and its artifacts in the
bucket. docs/howto/cluster.md gives the same steps as a user runs them.

1. The corpus is built here, uploaded to the bucket with its reference tasks, and removed
   from this disk: the cluster can only read it from the bucket.
2. `sweeps submit` of a tiny OLMo sweep (two grid points, one trial each, its two Ray Train
   workers FSDP on gloo, one on each worker node). As on the real cluster, trials ask for a GPU
   per worker and only the worker nodes have one (here a GPU resource without a device: the
   workers then train on the CPU with gloo), so the head holds the drivers alone.
3. When the first trial's first sharded checkpoint is in the bucket, one worker node is
   killed (SIGKILL, the whole node) and a new one joins, as the autoscaler would replace it.
4. The sweep finishes: every grid point once, each step's metrics once, checkpoints (each rank
   its shards) and MLflow's artifacts in the bucket, the corpus folder untouched (no trial
   scanned or wrote it), and each worker node holding its own cached copy of what it read.
Every wait is on an event (a key in the bucket, the job's state), never a sleep.
"""

from __future__ import annotations

import json
import shutil
import tempfile

import pytest

from tests.cluster.local_cluster import wait_alive
from tests.cluster.test_tracking_auth import ADMIN_LOGIN, admin_gets_in
from tests.conftest import free_port, run_sweeps, wait_for
from tests.mlflow_server import MlflowServer

BUCKET = "rehearsal"
STEPS, CHECKPOINT_EVERY, EVAL_EVERY = 12, 2, 4
FREQUENCIES = [0.03, 0.01]
SPEC = {"name": "rehearsal", "trainable": "olmo",
        "grid": {"width": ["4M"], "frequency": FREQUENCIES, "task": ["cmp"], "seed": [0]},
        "olmo": {"steps": STEPS, "seq_len": 32, "batch_size": 4, "warmup_steps": 1,
                 "eval_every": EVAL_EVERY, "checkpoint_every": CHECKPOINT_EVERY,
                 "eval_instances": 16, "parallel": "fsdp",
                 "corpus": f"s3://{BUCKET}/corpora/notes"},
        "resources": {"workers": 2, "cpu": 0.5, "gpu": 1, "max_concurrent_trials": 1},
        "failure": {"max_failures": 3}}
GPU_NODE = ("--num-cpus=1", "--num-gpus=1")  # a worker node: room for one Train worker
# A lost node is noticed within seconds (Ray's default: 5 missed checks 3 s apart).
FAST_HEALTH_CHECKS = {"RAY_health_check_period_ms": "500",
                      "RAY_health_check_failure_threshold": "4"}


def node_dir() -> str:
    return tempfile.mkdtemp(prefix="rayt-", dir="/tmp")


@pytest.fixture
def tracking_server(tmp_path, object_store):
    """The cluster's tracking server: MLflow's login app, artifacts served into the bucket."""
    (tmp_path / "mlflow").mkdir()
    (tmp_path / "mlflow" / "auth.ini").write_text(
        "[mlflow]\ndefault_permission = READ\nauth_cache_ttl_seconds = 60\n"
        f"database_uri = sqlite:///{tmp_path / 'mlflow' / 'auth.db'}\n")
    server = MlflowServer(
        tmp_path / "mlflow", free_port(),
        options=["--app-name", "basic-auth",
                 "--artifacts-destination", f"s3://{BUCKET}/mlflow-artifacts"],
        env={**object_store.env,
             "MLFLOW_AUTH_CONFIG_PATH": str(tmp_path / "mlflow" / "auth.ini"),
             "MLFLOW_AUTH_ADMIN_USERNAME": ADMIN_LOGIN["MLFLOW_TRACKING_USERNAME"],
             "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_LOGIN["MLFLOW_TRACKING_PASSWORD"],
             "MLFLOW_FLASK_SERVER_SECRET_KEY": "rehearsal"})
    server.start()
    wait_for(lambda: admin_gets_in(server), timeout=180, what="the admin's first login")
    yield server
    server.stop()


def upload_corpus(tmp_path, store) -> dict[str, str]:
    """`sweeps corpus build` here, then the folder to the bucket (`aws s3 sync` on a real
    cluster), then gone from this disk. The bucket's corpus keys and their ETags."""
    from injection import location

    docs = [f"Note {i}: {i} + {i % 7} = {i + i % 7}, and {i} < {i + 5}. The river is long."
            for i in range(400)]
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    built = run_sweeps("corpus", "build", "docs.jsonl", "--out", "notes", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    location.upload(tmp_path / "notes", SPEC["olmo"]["corpus"], last="corpus.json")
    shutil.rmtree(tmp_path / "notes")
    return etags(store, "corpora/")


def etags(store, prefix: str) -> dict[str, str]:
    pages = store.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET,
                                                                     Prefix=prefix)
    return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}


@pytest.mark.slow
def test_a_sweep_on_the_cluster_path_survives_a_lost_node(local_cluster, object_store, s3_env,
                                                          tracking_server, tmp_path,
                                                          write_spec):
    from mlflow import MlflowClient
    from ray.job_submission import JobStatus, JobSubmissionClient

    object_store.bucket(BUCKET)
    corpus_keys = upload_corpus(tmp_path, object_store)
    assert {"corpora/notes/corpus.json", "corpora/notes/reference-v2/reference.json"} <= \
        set(corpus_keys)

    # The nodes' environment, as cluster.yaml's settings and login give it to every node.
    caches = {name: tmp_path / f"cache-{name}" for name in ("head", "a", "b", "c")}
    # (RAY_API_SERVER_ADDRESS: Train's state-API callers find this cluster among other Rays
    # on the machine; a real cluster has one per machine.)
    nodes = {**object_store.env, **ADMIN_LOGIN, "MLFLOW_TRACKING_URI": tracking_server.uri,
             "SWEEPS_STORAGE": f"s3://{BUCKET}/sweeps",
             "RAY_API_SERVER_ADDRESS": local_cluster.dashboard_url}
    local_cluster.start_head("--num-cpus=1", env={**nodes, **FAST_HEALTH_CHECKS,
                                                  "SWEEPS_CACHE": str(caches["head"])})
    workers = {name: local_cluster.add_node(*GPU_NODE, temp_dir=node_dir(), env={
        **nodes, "SWEEPS_CACHE": str(caches[name])}) for name in ("a", "b")}
    wait_alive(local_cluster, nodes=3)

    # The submitting machine reads the corpus's manifest from the bucket; it has no login.
    submitted = run_sweeps("submit", write_spec(SPEC), "--address",
                           local_cluster.dashboard_url, cwd=tmp_path, env=object_store.env)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.split("as Ray job ", 1)[1].split(".\n", 1)[0]
    jobs = JobSubmissionClient(local_cluster.dashboard_url)

    def first_checkpoint() -> bool:
        """Ray Train has registered a checkpoint of the first trial (its snapshot in the
        bucket names one): what a restarted worker group resumes from."""
        assert not jobs.get_job_status(job_id).is_terminal(), jobs.get_job_logs(job_id)[-3000:]
        for key in etags(object_store, "sweeps/rehearsal/train/"):
            if key.endswith("/checkpoint_manager_snapshot.json") and json.loads(
                    object_store.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()
            ).get("latest_checkpoint_result"):
                return True
        return False

    wait_for(first_checkpoint, 300, "the first trial's first checkpoint in the bucket")
    local_cluster.kill_node(workers["a"])  # a lost machine, mid-trial
    local_cluster.add_node(*GPU_NODE, temp_dir=node_dir(),
                           env={**nodes, "SWEEPS_CACHE": str(caches["c"])})  # its replacement
    wait_for(lambda: jobs.get_job_status(job_id).is_terminal(), 600, f"job {job_id} to end")
    logs = jobs.get_job_logs(job_id)
    assert jobs.get_job_status(job_id) == JobStatus.SUCCEEDED, logs[-3000:]

    # Every grid point once, finished, each step's metrics once across the lost node.
    with pytest.MonkeyPatch.context() as patch:
        for name, value in ADMIN_LOGIN.items():
            patch.setenv(name, value)
        client = MlflowClient(tracking_server.uri)
        experiment = client.get_experiment_by_name("rehearsal").experiment_id
        runs = client.search_runs([experiment], "tags.kind = 'trial'")
        assert sorted(float(r.data.params["frequency"]) for r in runs) == sorted(FREQUENCIES)
        assert {r.info.status for r in runs} == {"FINISHED"}
        for run in runs:
            def steps(name):
                return [m.step for m in client.get_metric_history(run.info.run_id, name)]

            assert steps("rare/injected") == list(range(1, STEPS + 1))
            assert steps("rare/test_acc") == list(range(0, STEPS + 1, EVAL_EVERY))
            assert run.data.params["corpus"] == SPEC["olmo"]["corpus"]
        artifacts = etags(object_store, "mlflow-artifacts/")
        assert any(k.endswith("spec.yaml") for k in artifacts), sorted(artifacts)

    # The first trial resumed from a checkpoint after the node was lost (not from step 0).
    results = [json.loads(line) for key in etags(object_store, "sweeps/rehearsal/")
               if key.endswith("/result.json") for line in object_store.client().get_object(
                   Bucket=BUCKET, Key=key)["Body"].read().decode().splitlines()]
    assert max(r["resumed_from"] for r in results) >= CHECKPOINT_EVERY
    # Sharded checkpoints in the bucket: each rank's shards beside the metadata.
    checkpoints = {}
    for key in etags(object_store, "sweeps/rehearsal/train/"):
        folder, _, name = key.rpartition("/")
        if folder.rpartition("/")[2].startswith("checkpoint_"):
            checkpoints.setdefault(folder, set()).add(name)
    assert checkpoints and all({".metadata", "__0_0.distcp", "__1_0.distcp", "trial.pt"} <= names
                               for names in checkpoints.values())
    # Nothing wrote into the corpus folder (no reference scan, no cache); every worker node
    # that trained read the corpus from its own cached copy, the head none.
    assert etags(object_store, "corpora/") == corpus_keys
    assert not (tmp_path / "notes").exists()
    cached = {name: sorted(p.name for p in cache.rglob("*.npy")) if cache.exists() else []
              for name, cache in caches.items()}
    assert cached == {"head": [], "a": ["part-00000.npy"], "b": ["part-00000.npy"],
                      "c": ["part-00000.npy"]}
