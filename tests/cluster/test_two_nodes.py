"""A real two-node Ray cluster on this machine: a sweep submitted through the Jobs API, its
trial's two Ray Train workers on different nodes.

The nodes are sized so that the worker group cannot share one: the head offers 2 CPUs, of
which the trial's driver holds a sliver (0.01), leaving room for one 1-CPU worker; the second
node, with its own temp dir, offers 1 CPU. The trial is OLMo pretraining (4M, DDP on gloo
across the two nodes, cmp injected).
"""

from __future__ import annotations

import json
import tempfile

import pytest

from tests.cluster.local_cluster import wait_alive
from tests.conftest import run_sweeps, tiny_spec, wait_for

STEPS = 4
SPEC = {"name": "two-nodes", "trainable": "olmo",
        "grid": {"width": ["4M"], "frequency": [0.03], "task": ["cmp"], "seed": [0]},
        "olmo": {"steps": STEPS, "seq_len": 32, "batch_size": 4, "warmup_steps": 1,
                 "eval_every": 2, "checkpoint_every": 2, "eval_instances": 16},
        "resources": {"workers": 2, "cpu": 1}}


@pytest.mark.slow
def test_submitted_sweep_spreads_a_trial_over_two_nodes(local_cluster, tmp_path, write_spec,
                                                        tracking_uri):
    import ray
    from ray.job_submission import JobStatus, JobSubmissionClient
    from ray.util.state import list_actors

    local_cluster.start_head("--num-cpus=2")
    local_cluster.add_node("--num-cpus=1", temp_dir=tempfile.mkdtemp(prefix="rayt-", dir="/tmp"))
    wait_alive(local_cluster, nodes=2)
    nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}

    submitted = run_sweeps("submit", write_spec(SPEC), "--address", local_cluster.dashboard_url,
                           "--storage", tmp_path / "runs", "--tracking-uri", tracking_uri,
                           cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.split("as Ray job ", 1)[1].split(".\n", 1)[0]
    assert f"ray job logs -f {job_id}" in submitted.stdout

    jobs = JobSubmissionClient(local_cluster.dashboard_url)
    wait_for(lambda: jobs.get_job_status(job_id).is_terminal(), 300, f"job {job_id} to end")
    assert jobs.get_job_status(job_id) == JobStatus.SUCCEEDED, jobs.get_job_logs(job_id)[-3000:]

    workers = list_actors(address=local_cluster.dashboard_url, detail=True,
                          filters=[("class_name", "=", "RayTrainWorker")])
    assert len(workers) == 2
    assert {w.node_id for w in workers} == nodes  # one worker on each node

    curves = run_sweeps("curves", "two-nodes", "--format", "json", "--tracking-uri",
                        tracking_uri, cwd=tmp_path)
    rows = json.loads(curves.stdout)  # rank 0 logged the DDP trial's one grid point
    assert [(r["state"], r["step"]) for r in rows] == [("FINISHED", STEPS)]
    assert "rare/test_acc" in rows[0]["metrics"]


def test_submit_refuses_an_unreachable_cluster_and_a_bad_spec(tmp_path, write_spec):
    spec = write_spec(tiny_spec())
    unreachable = run_sweeps("submit", spec, "--address", "http://127.0.0.1:9", cwd=tmp_path)
    assert unreachable.returncode == 2
    assert "no Ray cluster answers at --address http://127.0.0.1:9" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr

    # Validated locally first: the (unreachable) cluster is never asked.
    invalid = run_sweeps("submit", spec, "--address", "http://127.0.0.1:9", "--set",
                         "synthetic.steps=0", cwd=tmp_path)
    assert invalid.returncode == 2
    assert "synthetic.steps" in invalid.stderr and "no Ray cluster" not in invalid.stderr
    assert list(tmp_path.iterdir()) == [spec]


def test_submit_refuses_a_local_corpus_for_nodes_on_other_machines(tmp_path):
    """Judged from the nodes' addresses: a cluster whose nodes all run here (these tests')
    reads this machine's folders; one node elsewhere cannot."""
    from sweeps.errors import UserError
    from sweeps.spec import validate
    from sweeps.submit import check_local_paths, this_machine
    from injection import corpus as corpora
    from injection.reference import make

    (tmp_path / "docs.jsonl").write_text(json.dumps({"text": "So 2 + 3 = 5."}))
    corpora.build(str(tmp_path / "docs.jsonl"), tmp_path / "corpus", prepare=make)
    spec = validate({**SPEC, "olmo": {**SPEC["olmo"], "corpus": str(tmp_path / "corpus")}})
    assert this_machine("127.0.0.1") and not this_machine("10.0.3.17")
    check_local_paths(spec, ["127.0.0.1", "127.0.0.1"])
    with pytest.raises(UserError, match=r"olmo.corpus = .*/corpus is a folder on this machine, "
                                        r"which the cluster's nodes \(10.0.3.17\) cannot read: "
                                        r"upload it .* --set olmo.corpus=s3://BUCKET/corpora/"):
        check_local_paths(spec, ["127.0.0.1", "10.0.3.17"])
    check_local_paths(validate(SPEC), ["10.0.3.17"])  # the embedded corpus: every node has it
