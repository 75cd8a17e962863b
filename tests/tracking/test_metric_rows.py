"""The sqlite fast path stores what MLflow's own `log_batch` stores, row for row (real MLflow,
two temporary sqlite stores, the same batches into each)."""

from __future__ import annotations

import math
import shutil

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag
from mlflow.exceptions import MlflowException

from tracking.metric_rows import SqliteRows, batch_writer

NAN, INF = math.nan, math.inf

# (step, batches): several keys and steps, a key again at later steps, timestamps out of order
# within a step, NaN and +-inf, rows identical to stored ones, ties of (step, timestamp, value)
# between NaN (stored as 0) and 0, and step 2 split across two batches.
BATCHES = [
    (0, [Metric("a", 1.0, 100, 0), Metric("b", 2.0, 100, 0), Metric("a", 1.0, 100, 0)]),
    (1, [Metric("a", 0.5, 300, 1), Metric("a", 0.7, 200, 1), Metric("b", NAN, 200, 1),
         Metric("c", INF, 200, 1), Metric("d", -INF, 200, 1), Metric("f", 0.0, 10, 1)]),
    (1, [Metric("a", 0.4, 400, 2), Metric("b", 0.0, 400, 2)]),
    (2, [Metric("b", NAN, 400, 2), Metric("c", 1.0, 400, 2), Metric("a", 0.3, 400, 2),
         Metric("f", NAN, 10, 1), Metric("f", 0.0, 10, 1)]),
    (2, [Metric("a", 0.5, 300, 1), Metric("a", 9.0, 500, 0), Metric("d", 5.0, 50, 2)]),
    (5, [Metric("e", NAN, 50, 5), Metric("e", 0.0, 50, 5), Metric("a", 0.2, 100, 3),
         Metric("c", -1.0, 400, 2), Metric("c", 2.0, 400, 2)]),
    (6, [Metric(f"m{k}", float(k), 600, 6) for k in range(1000)]),  # the client splits it
]
KEYS = ["a", "b", "c", "d", "e", "f", "m0", "m998", "m999"]


def rows(metrics) -> list[tuple]:
    return [(m.key, m.step, m.timestamp, repr(m.value)) for m in metrics]  # repr: NaN == NaN


def state(client: MlflowClient, run_id: str) -> tuple:
    """What a run holds of its metrics: the histories of KEYS, every key's latest row, its
    tags."""
    run = client.get_run(run_id)
    history = {key: rows(client.get_metric_history(run_id, key)) for key in KEYS}
    return history, sorted(rows(run.data.to_proto().metrics)), run.data.tags


@pytest.fixture
def clients(tmp_path, template_store):
    """Two sqlite stores, one written through the fast path, one through `log_batch`, each
    with one run; (writer, client, run id) of each."""
    pair = []
    for name in ("fast", "mlflow"):
        shutil.copyfile(template_store, tmp_path / f"{name}.db")
        client = MlflowClient(f"sqlite:///{tmp_path / name}.db")
        run = client.create_run(client.create_experiment("e")).info.run_id
        pair.append((batch_writer(client) if name == "fast" else client.log_batch, client, run))
    assert isinstance(pair[0][0].__self__, SqliteRows), "sqlite gets the fast path"
    return pair


def test_fast_rows_are_mlflows_rows(clients):
    for step, metrics in BATCHES:
        for write, _, run in clients:
            write(run, metrics=metrics, tags=[RunTag("last_step", str(step))])
    (_, fast, fast_run), (_, mlflow, mlflow_run) = clients
    ours, theirs = state(fast, fast_run), state(mlflow, mlflow_run)
    assert all(ours[0].values()) and ours[0] == theirs[0]  # histories
    assert len(ours[1]) == 1006 and ours[1] == theirs[1]  # the latest row of each key
    assert ours[2]["last_step"] == theirs[2]["last_step"] == "6"
    latest = {row[0]: row for row in ours[1]}
    assert latest["a"] == ("a", 3, 100, "0.2")  # a later step wins over a later time
    assert latest["c"] == ("c", 2, 400, "2.0")  # ... a later time, then a greater value
    assert latest["e"] == ("e", 5, 50, "nan") and latest["f"] == ("f", 1, 10, "0.0")  # equals


def test_a_deleted_or_unknown_run_is_refused_both_ways(clients):
    refusals = []
    for write, client, run in clients:
        write(run, metrics=[Metric("a", 1.0, 1, 0)], tags=[RunTag("last_step", "0")])
        client.delete_run(run)
        for run_id in (run, "f" * 32):
            with pytest.raises(MlflowException) as refused:
                write(run_id, metrics=[Metric("a", 2.0, 2, 1)], tags=[RunTag("last_step", "1")])
            refusals.append((refused.value.error_code,
                             refused.value.message.replace(run, "RUN")))
        client.restore_run(run)
        assert rows(client.get_metric_history(run, "a")) == [("a", 0, 1, "1.0")]
        assert client.get_run(run).data.tags["last_step"] == "0"
    assert refusals[:2] == refusals[2:]
    assert [code for code, _ in refusals[:2]] == [
        "INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"]


def test_an_invalid_metric_is_refused_both_ways_and_nothing_is_written(clients):
    refusals = []
    for write, client, run in clients:
        with pytest.raises(MlflowException) as refused:
            write(run, metrics=[Metric("a", 1.0, 1, 0), Metric("../up", 1.0, 1, 0)],
                  tags=[RunTag("last_step", "0")])
        refusals.append(refused.value.message)
        assert client.get_metric_history(run, "a") == []
        assert "last_step" not in client.get_run(run).data.tags
    assert refusals[0] == refusals[1]


def test_any_other_store_gets_mlflows_log_batch():
    client = MlflowClient("http://127.0.0.1:9")  # a tracking server (none needed to decide)
    assert batch_writer(client) == client.log_batch
