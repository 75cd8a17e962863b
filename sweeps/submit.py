"""`sweeps submit SPEC --address URL`: run `sweeps run` on a Ray cluster as a Ray job.

The spec is validated here first (with its `--set` and `--name`), so a bad one is refused
before anything reaches the cluster; what is shipped is the validated spec alone, as the job's
working dir. The cluster has this project installed (cluster.yaml's setup commands), and its
nodes' environment names the sweep storage and tracking server (`SWEEPS_STORAGE`,
`MLFLOW_TRACKING_URI`), so `--storage` and `--tracking-uri` are passed on only when given.
"""

from __future__ import annotations

import shlex
import tempfile
import time
from argparse import Namespace
from pathlib import Path

import yaml

from sweeps.errors import UserError
from sweeps.spec import load_spec

SPEC_FILE = "spec.yaml"  # the validated spec, in the job's working dir
AGENT_WAIT_S = 60


def add_parser(commands) -> None:
    help_ = "submit `sweeps run SPEC` to a Ray cluster as a Ray job"
    sub = commands.add_parser("submit", help=help_, description=help_)
    sub.set_defaults(handler="sweeps.submit:submit")
    sub.add_argument("spec", metavar="SPEC", help="sweep spec YAML file")
    sub.add_argument("--address", required=True,
                     help="the cluster's dashboard, e.g. http://127.0.0.1:8265 through "
                          "`ray dashboard cluster.yaml`")
    sub.add_argument("--name", help="sweep name (overrides the spec's)")
    sub.add_argument("--set", dest="overrides", action="append", default=[],
                     metavar="KEY=VALUE", help="override a spec field, e.g. synthetic.steps=200")
    sub.add_argument("--storage", help="sweep storage as the cluster sees it, e.g. "
                                       "s3://bucket/sweeps (default: the cluster's)")
    sub.add_argument("--tracking-uri", help="MLflow tracking URI as the cluster sees it "
                                            "(default: the cluster's)")


def entrypoint(args: Namespace) -> str:
    """The job's command line: `sweeps run` on the shipped spec, with the flags given."""
    command = ["python", "-m", "sweeps", "run", SPEC_FILE]
    for flag, value in [("--storage", args.storage), ("--tracking-uri", args.tracking_uri)]:
        if value:
            command += [flag, value]
    return shlex.join(command)


def connect(address: str):
    """A Jobs API client, or one message saying the cluster is not there."""
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except Exception as err:  # ConnectionError, or a malformed address (ValueError)
        raise UserError(
            f"no Ray cluster answers at --address {address} ({type(err).__name__}: {err}).\n"
            "Give the dashboard's URL: start `ray dashboard cluster.yaml` and use "
            "http://127.0.0.1:8265, or check that the cluster is up (`ray up cluster.yaml`).")


def submit_job(client, **job) -> str:
    """Submit, waiting out a cluster that has just started: its head answers before the
    agent that takes jobs is up ("No available agent to submit job, please try again")."""
    deadline = time.monotonic() + AGENT_WAIT_S
    while True:
        try:
            return client.submit_job(**job)
        except RuntimeError as err:  # the Jobs API's answer to a failed request
            if "No available agent" not in str(err) or time.monotonic() > deadline:
                raise UserError(f"the cluster refused the job: {err}")
            time.sleep(1)


def node_addresses(address: str) -> list[str]:
    """The IP addresses of the cluster's live nodes, from its state API."""
    from ray.util.state import list_nodes

    try:
        return [n.node_ip for n in list_nodes(address=address, filters=[("state", "=", "ALIVE")])]
    except Exception as err:  # a cluster without the state API: assume it is elsewhere
        return [f"unknown ({type(err).__name__})"]


def this_machine(ip: str) -> bool:
    """Whether `ip` is one of this machine's addresses (loopback included)."""
    import ipaddress
    import socket

    try:
        if ipaddress.ip_address(ip).is_loopback:
            return True
    except ValueError:
        return False
    try:
        own = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)}
    except OSError:
        own = set()
    return ip in own


def check_local_paths(spec, nodes: list[str]) -> None:
    """A path on this machine that trials would read is refused unless every node of the
    cluster runs here: the nodes of a real cluster cannot see this disk."""
    elsewhere = [ip for ip in nodes if not this_machine(ip)]
    paths = spec.runs_as.local_paths(spec.section)
    if not (paths and elsewhere):
        return
    field, path = next(iter(paths.items()))
    raise UserError(
        f"{field} = {path} is a folder on this machine, which the cluster's nodes "
        f"({', '.join(elsewhere[:3])}{', ...' if len(elsewhere) > 3 else ''}) cannot read: "
        f"upload it to the cluster's bucket (e.g. `aws s3 sync {path} "
        f"s3://BUCKET/corpora/{path.rstrip('/').rsplit('/', 1)[-1]}`) and submit with "
        f"--set {field}=s3://BUCKET/corpora/{path.rstrip('/').rsplit('/', 1)[-1]}")


def submit(args: Namespace) -> int:
    spec = load_spec(args.spec, args.overrides, args.name)
    client = connect(args.address)
    check_local_paths(spec, node_addresses(args.address))
    with tempfile.TemporaryDirectory(prefix="sweeps-submit-") as job_dir:
        (Path(job_dir) / SPEC_FILE).write_text(
            yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
        job_id = submit_job(client, entrypoint=entrypoint(args),
                            runtime_env={"working_dir": job_dir}, metadata={"sweep": spec.name})
    flags = "".join(f" {flag} {shlex.quote(value)}" for flag, value in
                    [("--storage", args.storage), ("--tracking-uri", args.tracking_uri)] if value)
    print(f"Submitted sweep {spec.name!r} as Ray job {job_id}.\n"
          f"  follow it:  sweeps status {spec.name} --watch{flags}, or its log: "
          f"ray job logs -f {job_id} --address {args.address}\n"
          f"  its state:  ray job status {job_id} --address {args.address}\n"
          f"  stop it:    ray job stop {job_id} --address {args.address}\n"
          f"  results:    sweeps status {spec.name}{flags} / sweeps curves {spec.name}{flags}"
          " (with the cluster's --storage and --tracking-uri, e.g. through an SSH tunnel)")
    return 0
