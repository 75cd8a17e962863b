"""Metric batches written straight into MLflow's own sqlite tables, in one transaction.

MLflow's `SqlAlchemyStore.log_batch` builds an ORM object per metric row, loads the run several
times and commits metrics and tags in separate transactions: a visible share of a synthetic
trial's slot time. On the embedded sqlite store this
module writes the same rows with SQLAlchemy Core instead (about 3x the rows per second,
`bench/metric_writes.py`), on the store's own engine and sessions, into MLflow's own tables
(`SqlMetric.__table__`, ...: the column names are MLflow's), with MLflow's semantics:

- the run must exist and be active (MLflow's own check and message);
- metrics and tags are validated by MLflow's own validators, values stored as MLflow stores
  them (`sanitize_metric_value`: NaN as 0 with `is_nan`, +-inf as +-max float);
- a row identical to a stored one is ignored (MLflow's primary key on every column);
- `latest_metrics` keeps, per key, the row with the greatest (step, timestamp, value), the
  first of equals winning (`_update_latest_metrics_if_necessary`);
- tags overwrite.

Metrics and tags commit together, so a kill cannot leave metrics without their tag on
this store (the logger's `Cursor` does not rely on that: a tracking server still commits them
apart). Every other store (a tracking server, other SQL dialects) gets MLflow's `log_batch`;
`tests/tracking/test_metric_rows.py` checks that both give the same run, row for row.
"""

from __future__ import annotations

from typing import Callable, Sequence

from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag

BatchWriter = Callable[..., None]  # (run_id, metrics=[Metric], tags=[RunTag]), as log_batch


def batch_writer(client: MlflowClient) -> BatchWriter:
    """The fastest correct way to store metric batches through `client`: decided once, from
    the store the client writes to."""
    from mlflow.store.db.db_types import SQLITE
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = client._tracking_client.store  # the store this client's log_batch would write to
    if isinstance(store, SqlAlchemyStore) and store.db_type == SQLITE:
        return SqliteRows(client).write
    return client.log_batch


class SqliteRows:
    """Writes metric batches into the sqlite store of `client` with SQLAlchemy Core."""

    def __init__(self, client: MlflowClient):
        from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlTag
        from sqlalchemy import and_, or_
        from sqlalchemy.dialects.sqlite import insert

        self.client, self.store = client, client._tracking_client.store
        metrics, latest, tags = SqlMetric.__table__, SqlLatestMetric.__table__, SqlTag.__table__
        self.insert_metrics = insert(metrics).on_conflict_do_nothing()
        upsert = insert(latest)
        new, old = upsert.excluded, latest.c
        self.upsert_latest = upsert.on_conflict_do_update(
            index_elements=[old.key, old.run_uuid],
            set_={c: new[c] for c in ("value", "timestamp", "step", "is_nan")},
            where=or_(new.step > old.step, and_(new.step == old.step, or_(
                new.timestamp > old.timestamp,
                and_(new.timestamp == old.timestamp, new.value > old.value)))))
        upsert = insert(tags)
        self.upsert_tags = upsert.on_conflict_do_update(
            index_elements=[tags.c.key, tags.c.run_uuid], set_={"value": upsert.excluded.value})

    def write(self, run_id: str, metrics: Sequence[Metric] = (),
              tags: Sequence[RunTag] = ()) -> None:
        """What `client.log_batch(run_id, metrics, tags=tags)` stores, in one transaction (any
        number of metrics: the client would split them into several)."""
        from mlflow.tracking.fluent import get_active_model_id
        from mlflow.tracking.metric_value_conversion_utils import (
            convert_metric_value_to_float_if_possible as to_float)
        from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME
        from mlflow.utils.validation import _validate_metric, _validate_run_id, _validate_tag

        if (get_active_model_id() or any(m.model_id for m in metrics)
                or any(t.key == MLFLOW_RUN_NAME for t in tags)):
            # MLflow also files such metrics under their model, or renames the run: its way
            return self.client.log_batch(run_id, metrics=metrics, tags=tags)
        if not metrics and not tags:
            return None
        _validate_run_id(run_id)
        rows, latest = [], {}
        for i, metric in enumerate(metrics):
            value = to_float(metric.value)
            _validate_metric(metric.key, value, metric.timestamp, metric.step, f"metrics[{i}]")
            is_nan, value = self.store.sanitize_metric_value(value)
            row = {"run_uuid": run_id, "key": metric.key, "value": value,
                   "timestamp": metric.timestamp, "step": metric.step, "is_nan": is_nan}
            rows.append(row)
            best = latest.get(metric.key)
            if best is None or _order(row) > _order(best):  # the first of equals wins
                latest[metric.key] = row
        tags = [_validate_tag(t.key, t.value, f"tags[{i}]") for i, t in enumerate(tags)]
        with self.store.ManagedSessionMaker(read_only=False) as session:
            # The check reads before the write transaction (pysqlite begins one at the first
            # write), so it never holds a read lock while waiting for another writer.
            self.store._check_run_is_active(self.store._get_run(session, run_id))
            if rows:
                session.execute(self.insert_metrics, rows)
                session.execute(self.upsert_latest, list(latest.values()))
            if tags:  # in order: the last of a key wins, as in MLflow
                session.execute(self.upsert_tags, [
                    {"run_uuid": run_id, "key": t.key, "value": t.value} for t in tags])


def _order(row: dict) -> tuple:
    return row["step"], row["timestamp"], row["value"]
