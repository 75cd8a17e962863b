"""cluster.yaml passes Ray's own launcher validation and keeps the issue's promises."""

from __future__ import annotations

import re
import shlex
from unittest.mock import ANY

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from tests.cluster.local_cluster import REPO

MLFLOW_LOGIN = "~/.scaling-sweeps/mlflow.env"  # made once by the user, like ~/.ray/auth_token
CLUSTER_ENV = "~/.scaling-sweeps/cluster.env"  # the settings, written on every node
EXPORT_LOGIN = f"set -a; . {MLFLOW_LOGIN} || exit 1; . {CLUSTER_ENV}; set +a;"
READ_SETTINGS = f". {CLUSTER_ENV};"
# A password written into a file, not one taken from a variable ($...) at run time.
LITERAL_PASSWORD = r"""(?i)password\s*[:=](?!\s*["']?\$)"""


@pytest.fixture(scope="module")
def launcher() -> dict:
    return yaml.safe_load((REPO / "cluster.yaml").read_text())


def test_ray_validates_cluster_yaml(launcher):
    prepared = prepare_config(launcher)  # what `ray up` does first: defaults merged in
    validate_config(prepared)
    assert prepared["available_node_types"]["head"]["max_workers"] == 0


def test_ray_validation_would_catch_a_broken_file(launcher):
    broken = {**launcher, "idle_timeout_minute": 5}  # a typo
    with pytest.raises(jsonschema.ValidationError, match="idle_timeout_minute"):
        validate_config(prepare_config(broken))


def test_image_matches_the_project_ray_version(launcher):
    assert launcher["docker"]["image"] == f"rayproject/ray:{ray.__version__}-py311-gpu"


def test_gpu_types_scale_from_zero_and_the_head_has_no_gpu(launcher):
    types = launcher["available_node_types"]
    gpus = {name: t["resources"].get("GPU", 0) for name, t in types.items()}
    assert gpus[launcher["head_node_type"]] == 0
    assert sorted(g for g in gpus.values() if g) == [1, 8]
    assert all(t["min_workers"] == 0 for name, t in types.items()
               if name != launcher["head_node_type"])


def test_only_ssh_is_open_and_token_auth_is_on(launcher):
    rules = launcher["provider"]["security_group"]["IpPermissions"]
    assert [(r["FromPort"], r["ToPort"]) for r in rules] == [(22, 22)]
    starts = launcher["head_start_ray_commands"] + launcher["worker_start_ray_commands"]
    assert all("RAY_AUTH_MODE=token" in c for c in starts if "ray start" in c)
    assert "--dashboard-host=localhost" in " ".join(launcher["head_start_ray_commands"])


def test_no_credentials_and_a_pinned_install(launcher):
    text = (REPO / "cluster.yaml").read_text()
    assert not re.search(r"(?i)aws_access_key|aws_secret|secret_access", text)
    assert not re.search(LITERAL_PASSWORD, text)
    assert re.search(LITERAL_PASSWORD, "password: hunter2") and \
        re.search(LITERAL_PASSWORD, "MLFLOW_TRACKING_PASSWORD=hunter2")  # the check can fail
    install = " ".join(launcher["setup_commands"])
    assert "torch==2.13.0" in install
    assert re.search(r"scaling-sweeps @ git\+\S+@v\d+\.\d+\.\d+", install)


def settings(launcher) -> dict[str, str]:
    """The settings file every node writes (setup_commands), as the shell would."""
    (command,) = [c for c in launcher["setup_commands"] if CLUSTER_ENV in c]
    return dict(item.strip("'").split("=", 1) for item in shlex.split(command)
                if "=" in item and not item.startswith("--"))


def test_storage_corpus_and_artifacts_are_settings_filled_in_once(launcher):
    """One place holds the bucket's URIs; every `ray start` (so every job and trial) and the
    tracking server read them from there, and no other line names the bucket."""
    values = settings(launcher)
    assert {k: v.split("/", 3)[3] for k, v in values.items() if k.startswith("SWEEPS_")} == {
        "SWEEPS_STORAGE": "sweeps", "SWEEPS_CORPUS": "corpora/dolma",
        "SWEEPS_ARTIFACTS": "mlflow-artifacts"}
    assert all(v.startswith("s3://SET-ME-bucket/") for k, v in values.items()
               if k.startswith("SWEEPS_"))
    text = (REPO / "cluster.yaml").read_text()
    assert text.count("s3://") == 3  # the settings alone
    starts = [c for c in launcher["head_start_ray_commands"] +
              launcher["worker_start_ray_commands"] if "ray start" in c]
    assert all(READ_SETTINGS in c and c.index(READ_SETTINGS) < c.index("ray start")
               for c in starts)
    head = " ".join(launcher["head_start_ray_commands"])
    assert "--artifacts-destination $SWEEPS_ARTIFACTS" in head


def test_gpu_nodes_get_what_nccl_needs_across_nodes(launcher):
    """Every GPU in the container, a /dev/shm far above Docker's 64 MB, unlimited locked
    memory; NCCL on the instance's interface (never loopback or Docker's bridge) and raising
    on a lost peer; the head, without GPUs, runs no --gpus option."""
    values = settings(launcher)
    assert values["NCCL_SOCKET_IFNAME"] == "^lo,docker"
    assert values["TORCH_NCCL_ASYNC_ERROR_HANDLING"] == "1"
    assert "--gpus all" not in " ".join(launcher["docker"]["run_options"])
    for name, node in launcher["available_node_types"].items():
        options = " ".join(node.get("docker", {}).get("worker_run_options", []))
        if not node["resources"].get("GPU"):
            assert "--gpus" not in options, name
            continue
        assert "--gpus all" in options and "--ulimit memlock=-1" in options, name
        shm = re.search(r"--shm-size=(\d+)g", options)
        assert shm and int(shm.group(1)) >= 8, name
    assert "EFA variant" in (REPO / "cluster.yaml").read_text()


def test_tracking_server_lets_in_only_its_users(launcher):
    """MLflow's basic-auth app on the head, its admin from the login file the user made once
    (copied to every node, like Ray's token), never from this file; every `ray start` exports
    that login, so Ray jobs and trials, which inherit the raylet's environment, send it."""
    assert launcher["file_mounts"][MLFLOW_LOGIN] == MLFLOW_LOGIN
    head = " ".join(launcher["head_start_ray_commands"])
    assert "exec mlflow server --app-name basic-auth" in head
    assert "default_permission = READ" in head
    assert "MLFLOW_AUTH_ADMIN_USERNAME=$MLFLOW_TRACKING_USERNAME" in head
    assert "MLFLOW_AUTH_ADMIN_PASSWORD=$MLFLOW_TRACKING_PASSWORD" in head
    starts = [c for c in launcher["head_start_ray_commands"] +
              launcher["worker_start_ray_commands"] if "ray start" in c]
    assert len(starts) == 2
    assert all(EXPORT_LOGIN in c and c.index(EXPORT_LOGIN) < c.index("ray start")
               for c in starts)


def test_kuberay_manifest_mirrors_cluster_yaml(launcher):
    config, manifest = yaml.safe_load_all((REPO / "k8s" / "raycluster.yaml").read_text())
    assert config["kind"] == "ConfigMap" and config["data"] == settings(launcher)
    spec = manifest["spec"]
    assert manifest["kind"] == "RayCluster" and spec["rayVersion"] == ray.__version__
    assert spec["enableInTreeAutoscaling"] is True
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    launcher_gpus = {name: t["resources"]["GPU"] for name, t in
                     launcher["available_node_types"].items() if t["resources"].get("GPU")}
    assert {name: int(g["rayStartParams"]["num-gpus"]) for name, g in groups.items()} == \
        launcher_gpus
    assert all(g["minReplicas"] == 0 for g in groups.values())
    pods = [spec["headGroupSpec"]["template"]] + [g["template"] for g in groups.values()]
    for pod in pods:
        (container,) = pod["spec"]["containers"]
        assert container["image"] == launcher["docker"]["image"]
        assert {"name": "RAY_AUTH_MODE", "value": "token"} in container["env"]
        assert container["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
        for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):  # the Secret's
            assert {"name": name, "valueFrom": {"secretKeyRef": {
                "name": "mlflow-auth", "key": name}}} in container["env"]
    (head,) = spec["headGroupSpec"]["template"]["spec"]["containers"]
    server = head["lifecycle"]["postStart"]["exec"]["command"][-1]
    assert "mlflow server --app-name basic-auth" in server
    assert "default_permission = READ" in server
    assert "MLFLOW_AUTH_ADMIN_PASSWORD=$MLFLOW_TRACKING_PASSWORD" in server
    assert not re.search(LITERAL_PASSWORD, (REPO / "k8s" / "raycluster.yaml").read_text())
    assert "--artifacts-destination $SWEEPS_ARTIFACTS" in server
    for group in groups.values():  # a memory /dev/shm on every GPU pod
        pod = group["template"]["spec"]
        assert {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": ANY}} in [
            {**v, "emptyDir": {**v["emptyDir"], "sizeLimit": ANY}} for v in pod["volumes"]]
        assert pod["containers"][0]["volumeMounts"] == [{"name": "shm", "mountPath": "/dev/shm"}]
