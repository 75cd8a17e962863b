"""GPU nodes scale from zero and back, with Ray's own fake multi-node provider (what Ray tests
its autoscaler with) and the worker node types of cluster.yaml itself.

The fake nodes are raylets on this machine that offer cluster.yaml's resources (a "GPU" but no
CUDA device): the trials fall back to the CPU, which is what this test also shows.
"""

from __future__ import annotations

import json

import pytest
import yaml

from tests.cluster.local_cluster import REPO, wait_alive
from tests.conftest import run_sweeps, sweeps_command, tiny_spec, wait_for

IDLE_TIMEOUT_S = 6
FAKE_HEAD = "ray.head.default"  # the head's type name the fake provider insists on


def fake_cluster_config(gcs_address: str) -> dict:
    """cluster.yaml's worker node types under the fake provider, with a short idle timeout."""
    launcher = yaml.safe_load((REPO / "cluster.yaml").read_text())
    workers = {name: {"resources": node["resources"], "min_workers": node["min_workers"],
                      "max_workers": node["max_workers"], "node_config": {}}
               for name, node in launcher["available_node_types"].items()
               if name != launcher["head_node_type"]}
    return {
        "cluster_name": "fake-" + launcher["cluster_name"],
        "max_workers": launcher["max_workers"],
        "upscaling_speed": launcher["upscaling_speed"],
        "idle_timeout_minutes": IDLE_TIMEOUT_S / 60,
        "provider": {"type": "fake_multinode", "use_node_id_as_ip": True,
                     "disable_node_updaters": True, "disable_launch_config_check": True,
                     "gcs_address": gcs_address},
        "auth": {},
        "head_node_type": FAKE_HEAD,
        "available_node_types": {
            FAKE_HEAD: {"resources": {"CPU": 1}, "node_config": {}, "max_workers": 0},
            **workers},
        "file_mounts": {}, "cluster_synced_files": [], "file_mounts_sync_continuously": False,
        "initialization_commands": [], "setup_commands": [], "head_setup_commands": [],
        "worker_setup_commands": [], "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }


@pytest.mark.slow
def test_gpu_nodes_scale_from_zero_run_the_sweep_and_go_away(local_cluster, tmp_path,
                                                                write_spec, tracking_uri):
    import ray

    config = fake_cluster_config(local_cluster.address)
    gpu_types = {name: t["resources"] for name, t in config["available_node_types"].items()
                 if t["resources"].get("GPU")}
    assert gpu_types and all(config["available_node_types"][t]["min_workers"] == 0
                             for t in gpu_types)
    autoscaling = tmp_path / "autoscaling.json"
    autoscaling.write_text(json.dumps(config))
    local_cluster.start_head("--num-cpus=1", f"--autoscaling-config={autoscaling}",
                             env={"RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1"})
    wait_alive(local_cluster, nodes=1)
    assert ray.cluster_resources().get("GPU", 0) == 0  # zero GPU workers to start with

    def gpu_nodes() -> dict[str, dict]:
        return {n["NodeID"]: {k: v for k, v in n["Resources"].items() if k in ("CPU", "GPU")}
                for n in ray.nodes() if n["Alive"] and n["Resources"].get("GPU")}

    # Two trials (two widths), each asking for a GPU: the autoscaler must add GPU nodes.
    spec = write_spec(tiny_spec(resources={"cpu": 1, "gpu": 1}, synthetic__steps=40,
                                synthetic__log_every=10, synthetic__tolerance=0))
    log = tmp_path / "sweep.log"
    with log.open("w") as out:
        sweep = sweeps_command("run", spec, "--storage", tmp_path / "runs", "--tracking-uri",
                               tracking_uri, cwd=tmp_path, stdout=out, stderr=out,
                               env={"RAY_ADDRESS": local_cluster.address})
        try:
            wait_for(lambda: gpu_nodes() or sweep.poll() is not None, 120,
                     "the autoscaler to add a GPU node")
            added = gpu_nodes()
            assert sweep.wait(timeout=300) == 0, log.read_text()[-3000:]
        finally:
            sweep.kill()
    assert added, "no GPU node was added: " + log.read_text()[-3000:]
    # Nodes of cluster.yaml's GPU types, added while the sweep ran, one per waiting trial.
    assert all(resources in gpu_types.values() for resources in added.values())

    curves = run_sweeps("curves", "tiny", "--format", "json", "--tracking-uri", tracking_uri,
                        cwd=tmp_path)
    rows = json.loads(curves.stdout)
    assert len(rows) == 4 and {r["state"] for r in rows} == {"FINISHED"}
    assert all(r["step"] == 40 for r in rows)

    # Idle GPU nodes go away after the idle timeout: back to the head alone.
    wait_for(lambda: local_cluster.node_count() == 1, 60 + IDLE_TIMEOUT_S,
             "the idle GPU nodes to be removed")
    assert ray.cluster_resources().get("GPU", 0) == 0
