"""Metric rows per second into the embedded sqlite store: MLflow's `log_batch` against the
fast path of `tracking.metric_rows`, on the same workload, alternating, in one run.

    .venv/bin/python -m bench.metric_writes [--runs 6] [--steps 100] [--keys 26] [--every 5]
                                            [--once 256] [--rounds 3]

The workload is a synthetic trial's: `--runs` grid points, each logging `--keys` metrics per
step for `--steps` steps, stored every `--every` steps (one batch per run and store, with its
`last_step` tag, as `tracking.logger` stores them), then `--once` keys once per run at the last
step (`feature_step/<k>/<j>`). Each round writes it into a fresh sqlite store per way; reported:
the median rows/s of each and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag

from tracking.metric_rows import batch_writer
from tracking.runs import connect


def batches(args) -> list[tuple[int, list[Metric]]]:
    """(last step, metrics) of each store of one run, in order."""
    now = int(time.time() * 1000)
    out = []
    for first in range(0, args.steps, args.every):
        steps = range(first, min(first + args.every, args.steps))
        out.append((steps[-1], [Metric(f"task_loss/{k}", 1.0 / (s + k + 1), now + s, s)
                                for s in steps for k in range(args.keys)]))
    last = args.steps - 1
    out.append((last, [Metric(f"feature_step/{k // 16}/{k % 16}", float(k), now + last, last)
                       for k in range(args.once)]))
    return out


def rows_per_s(way: str, args) -> float:
    """Rows/s of writing the workload one way into a fresh store."""
    with tempfile.TemporaryDirectory() as folder:
        client = connect(f"sqlite:///{folder}/mlflow.db")
        experiment = client.create_experiment("bench")
        runs = [client.create_run(experiment).info.run_id for _ in range(args.runs)]
        write = batch_writer(client) if way == "fast path" else client.log_batch
        work = batches(args)
        start = time.perf_counter()
        for last, metrics in work:
            for run in runs:
                write(run, metrics=metrics, tags=[RunTag("last_step", str(last))])
        took = time.perf_counter() - start
        stored = stored_rows(client, runs)
    rows = args.runs * sum(len(metrics) for _, metrics in work)
    assert stored == rows, f"{way}: {stored} rows stored of {rows}"
    return rows / took


def stored_rows(client: MlflowClient, runs: list[str]) -> int:
    """Rows in the store's metrics table for `runs`: what both ways must have written."""
    from mlflow.store.tracking.dbmodels.models import SqlMetric
    from sqlalchemy import func, select

    store = client._tracking_client.store
    with store.ManagedSessionMaker() as session:
        return session.execute(select(func.count()).select_from(SqlMetric.__table__).where(
            SqlMetric.__table__.c.run_uuid.in_(runs))).scalar_one()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--keys", type=int, default=26)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--once", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ways = ("log_batch", "fast path")
    measured = {way: [] for way in ways}
    for _ in range(args.rounds):
        for way in ways:
            measured[way].append(rows_per_s(way, args))
    rows = args.runs * (args.steps * args.keys + args.once)
    print(f"{args.runs} runs x {args.steps} steps x {args.keys} keys, stored every "
          f"{args.every} steps, + {args.once} once-per-run keys: {rows} rows; "
          f"median of {args.rounds} rounds")
    print(f"{'way':<10} {'rows/s':>9} {'us/row':>7} {'/ log_batch':>11}")
    base = statistics.median(measured["log_batch"])
    for way in ways:
        rate = statistics.median(measured[way])
        print(f"{way:<10} {rate:>9.0f} {1e6 / rate:>7.1f} {rate / base:>11.1f}")


if __name__ == "__main__":
    main()
