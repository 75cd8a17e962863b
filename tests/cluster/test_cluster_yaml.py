"""cluster.yaml passes Ray's own launcher validation and keeps the issue's promises."""

from __future__ import annotations

import re

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from tests.cluster.local_cluster import REPO

MLFLOW_LOGIN = "~/.scaling-sweeps/mlflow.env"  # made once by the user, like ~/.ray/auth_token
EXPORT_LOGIN = f"set -a; . {MLFLOW_LOGIN} || exit 1; set +a;"
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
    assert "s3://" in " ".join(launcher["head_start_ray_commands"])  # storage and artifacts


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
    manifest = yaml.safe_load((REPO / "k8s" / "raycluster.yaml").read_text())
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
        for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):  # the Secret's
            assert {"name": name, "valueFrom": {"secretKeyRef": {
                "name": "mlflow-auth", "key": name}}} in container["env"]
    (head,) = spec["headGroupSpec"]["template"]["spec"]["containers"]
    server = head["lifecycle"]["postStart"]["exec"]["command"][-1]
    assert "mlflow server --app-name basic-auth" in server
    assert "default_permission = READ" in server
    assert "MLFLOW_AUTH_ADMIN_PASSWORD=$MLFLOW_TRACKING_PASSWORD" in server
    assert not re.search(LITERAL_PASSWORD, (REPO / "k8s" / "raycluster.yaml").read_text())
