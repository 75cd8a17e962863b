"""The cluster's tracking server lets in only the team: a real `mlflow server` on loopback with
MLflow's basic-auth app, set up as cluster.yaml sets up the head's (default_permission READ,
the admin created from the login's environment variables, artifacts served by the server)."""

from __future__ import annotations

import base64
import json
import secrets
import urllib.error
import urllib.request

import mlflow.server
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tests.cluster.local_cluster import wait_alive
from tests.conftest import free_port, run_sweeps, tiny_spec, wait_for
from tests.mlflow_server import MlflowServer
from tracking.errors import TrackingAuthError
from tracking.runs import PlannedRun, connect, ensure_runs, experiment_id

LOGIN_VARIABLES = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


def login(username: str, password: str) -> dict:
    """MLflow's standard variables for a user: what ~/.scaling-sweeps/mlflow.env holds."""
    return dict(zip(LOGIN_VARIABLES, (username, password)))


ADMIN, PASSWORD = "admin", secrets.token_urlsafe(24)
ADMIN_LOGIN = login(ADMIN, PASSWORD)


def admin_gets_in(server: MlflowServer) -> bool:
    """An API request with the admin's login answered: the login app is up, not only the
    server (/health needs no login; the first login takes seconds on a loaded machine)."""
    token = base64.b64encode(f"{ADMIN}:{PASSWORD}".encode()).decode()
    request = urllib.request.Request(
        f"{server.uri}/api/2.0/mlflow/experiments/search?max_results=1",
        headers={"Authorization": f"Basic {token}"})
    try:
        return urllib.request.urlopen(request, timeout=60).status == 200
    except OSError:
        return False


# Every test here talks to a real MLflow server with basic auth, started once for the module
# (its start took 99 s of one `make test-fast` at load average 27 on 2 cores): the slow tier.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    """One server for the module (it takes a while to start), stopped as a process group."""
    tmp = tmp_path_factory.mktemp("auth-server")
    (tmp / "auth.ini").write_text(
        "[mlflow]\ndefault_permission = READ\nauth_cache_ttl_seconds = 60\n"
        f"database_uri = sqlite:///{tmp / 'auth.db'}\n")
    server = MlflowServer(
        tmp, free_port(),
        options=["--app-name", "basic-auth", "--artifacts-destination", str(tmp / "artifacts")],
        env={"MLFLOW_AUTH_CONFIG_PATH": str(tmp / "auth.ini"),
             "MLFLOW_AUTH_ADMIN_USERNAME": ADMIN, "MLFLOW_AUTH_ADMIN_PASSWORD": PASSWORD,
             "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(32)})
    server.start()
    wait_for(lambda: admin_gets_in(server), timeout=180, what="the admin's first login")
    yield server
    server.stop()
    assert not server.answers(), "the tracking server is really gone"


@pytest.fixture(autouse=True)
def logged_out(monkeypatch):
    """This process and what it starts log in only where a test says so."""
    for name in LOGIN_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def log_in(monkeypatch, variables: dict) -> None:
    """This process's MLflow clients log in with `variables` (for the rest of the test)."""
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def test_an_anonymous_request_is_refused(auth_server):
    """Anything on the cluster's network without the login: 401, no data."""
    url = f"{auth_server.uri}/api/2.0/mlflow/experiments/search?max_results=1"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    assert refused.value.code == 401


@pytest.mark.parametrize("given, says", [
    ({**ADMIN_LOGIN, "MLFLOW_TRACKING_PASSWORD": "not-the-password"},
     "refused MLflow user 'admin': wrong password"),
    ({}, "requires a login and none was given"),
], ids=["wrong-password", "no-login"])
def test_a_wrong_or_missing_login_exits_2_before_anything_starts(
        given, says, auth_server, tmp_path, write_spec, monkeypatch):
    """One message naming the variables to set, exit 2; no storage folder, no experiment, and
    no Ray: RAY_ADDRESS names a port where nothing listens, so reaching Ray would end
    differently (a connection error, not this message)."""
    spec = write_spec(tiny_spec(name="refused"))
    result = run_sweeps("run", spec, "--tracking-uri", auth_server.uri, cwd=tmp_path,
                        env={**given, "RAY_ADDRESS": f"127.0.0.1:{free_port()}"})
    assert result.returncode == 2, result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr
    assert all(name in result.stderr for name in LOGIN_VARIABLES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]
    log_in(monkeypatch, ADMIN_LOGIN)
    assert MlflowClient(auth_server.uri).get_experiment_by_name("refused") is None


def test_a_second_user_reads_every_sweep_and_changes_none(auth_server, tmp_path, monkeypatch):
    """The second user of docs/howto/cluster.md: created by the admin through MLflow's user
    API, then READ on everything (default_permission): the team's sweeps readable, not
    deletable."""
    log_in(monkeypatch, ADMIN_LOGIN)
    admin = connect(auth_server.uri)
    team_sweep = experiment_id(admin, "team-sweep", create=True)
    params = {"width": 4, "frequency": 0.1, "task": "simple", "seed": 0}
    ensure_runs(admin, team_sweep, [PlannedRun("width=4,frequency=0.1,task=simple,seed=0",
                                               params, {"trainable": "synthetic"})])
    alice_password = secrets.token_urlsafe(24)
    mlflow.server.get_app_client("basic-auth", tracking_uri=auth_server.uri).create_user(
        "alice", alice_password)

    alice = login("alice", alice_password)
    status = run_sweeps("status", "team-sweep", "--tracking-uri", auth_server.uri,
                        cwd=tmp_path, env=alice)
    assert status.returncode == 0, status.stderr
    assert "width=4,frequency=0.1,task=simple,seed=0" in status.stdout
    log_in(monkeypatch, alice)
    with pytest.raises(MlflowException) as refused:
        MlflowClient(auth_server.uri).delete_experiment(team_sweep)
    assert refused.value.get_http_status_code() == 403


def test_rotating_the_admin_password_refuses_the_old_one(auth_server, monkeypatch):
    """docs/howto/cluster.md's rotation: the admin changes its own password through MLflow's
    user API, which asks for the current one; from then on the old password gets the clear
    message."""
    users = mlflow.server.get_app_client("basic-auth", tracking_uri=auth_server.uri)
    rotated = secrets.token_urlsafe(24)
    log_in(monkeypatch, ADMIN_LOGIN)
    users.update_user_password(ADMIN, rotated, current_password=PASSWORD)
    try:
        with pytest.raises(TrackingAuthError, match="refused MLflow user 'admin'"):
            connect(auth_server.uri)
        log_in(monkeypatch, login(ADMIN, rotated))
        connect(auth_server.uri)
    finally:  # the other tests' login again
        log_in(monkeypatch, login(ADMIN, rotated))
        users.update_user_password(ADMIN, PASSWORD, current_password=rotated)


def test_a_submitted_sweep_logs_in_with_the_nodes_login(auth_server, local_cluster, tmp_path,
                                                        write_spec):
    """As on the cluster: the login is in the nodes' environment only (cluster.yaml exports
    it before `ray start`; KubeRay sets it from the Secret), the submitting machine has none,
    and the Ray job's `sweeps run` and its trials log in with the nodes' login."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    local_cluster.start_head("--num-cpus=2", env={
        **ADMIN_LOGIN, "MLFLOW_TRACKING_URI": auth_server.uri,
        "SWEEPS_STORAGE": str(tmp_path / "runs")})
    wait_alive(local_cluster, nodes=1)
    submitted = run_sweeps("submit", write_spec(tiny_spec()), "--address",
                           local_cluster.dashboard_url, cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.split("as Ray job ", 1)[1].split(".\n", 1)[0]
    jobs = JobSubmissionClient(local_cluster.dashboard_url)
    wait_for(lambda: jobs.get_job_status(job_id).is_terminal(), 300, f"job {job_id} to end")
    assert jobs.get_job_status(job_id) == JobStatus.SUCCEEDED, jobs.get_job_logs(job_id)[-3000:]

    curves = run_sweeps("curves", "tiny", "--format", "json", "--tracking-uri",
                        auth_server.uri, cwd=tmp_path, env=ADMIN_LOGIN)
    assert curves.returncode == 0, curves.stderr
    rows = json.loads(curves.stdout)
    assert len(rows) == 4 and {r["state"] for r in rows} == {"FINISHED"}
