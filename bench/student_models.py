"""What logging each grid point's trained model costs a synthetic trial, one run.

    .venv/bin/python -m bench.student_models [--tasks 8] [--features 8] [--widths 8 24 56]

For the demo preset's problem (K=8, r=8, population mode, default steps) and a few widths,
one pack of 3 frequencies is trained to its steps (the trial's compute), then its 3 students
are logged as MLflow models to a fresh sqlite store, as a trial does at its end
(`Synthetic.trained_model`, logged by `tracking.registry.log_model`). The first model a
process logs also pays for importing MLflow's pyfunc machinery; it is shown on its own.
Printed per width: compute seconds, model logging seconds, and their ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from mlflow import MlflowClient

from sweeps.spec import validate
from trainables.points import Point
from trainables.synthetic import SYNTHETIC, SyntheticSection
from trainables.synthetic.student import Pack
from trainables.synthetic.trainable import member_for, setup_for
from tracking.registry import log_model
from tracking.runs import experiment_id

FREQUENCIES = (0.1, 0.03, 0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--widths", type=int, nargs="+", default=[8, 24, 56])
    args = parser.parse_args()
    spec = validate({"name": "bench", "trainable": "synthetic",
                     "grid": {"width": args.widths, "frequency": list(FREQUENCIES),
                              "task": ["complex"]},
                     "synthetic": {"tasks": args.tasks, "features_per_task": args.features}})
    section = spec.synthetic
    with tempfile.TemporaryDirectory() as tmp:
        client = MlflowClient(f"sqlite:///{Path(tmp, 'mlflow.db')}")
        experiment = experiment_id(client, "bench", create=True)
        start = time.perf_counter()
        log_student(client, client.create_run(experiment).info.run_id, section,
                    *_trained(section, args.widths[0], steps=1))
        print(f"first model in a process (imports included): {time.perf_counter() - start:.2f} s")
        print(f"{'width':>5} {'steps':>6} {'compute s':>10} {'log 3 models s':>15} {'ratio':>7}")
        for width in args.widths:
            start = time.perf_counter()
            pack = _pack(section, width)
            steps = max(SYNTHETIC.resolve(section, Point(width, f, "complex", 0)).steps
                        for f in FREQUENCIES)
            for _ in range(steps):
                pack.train_step()
            compute = time.perf_counter() - start
            start = time.perf_counter()
            for j in range(len(FREQUENCIES)):
                log_student(client, client.create_run(experiment).info.run_id, section,
                            pack.U[j].numpy(), pack.D[j].numpy())
            logging = time.perf_counter() - start
            print(f"{width:>5} {steps:>6} {compute:>10.2f} {logging:>15.3f} "
                  f"{logging / compute:>7.1%}")


def log_student(client: MlflowClient, run_id: str, section: SyntheticSection, encoder,
                decoders) -> None:
    with tempfile.TemporaryDirectory() as folder:
        log_model(client, run_id,
                  SYNTHETIC.trained_model(section, (encoder, decoders), Path(folder)))


def _pack(section: SyntheticSection, width: int) -> Pack:
    points = [Point(width, f, "complex", 0) for f in FREQUENCIES]
    return Pack(setup_for(section, width),
                [member_for(SYNTHETIC.resolve(section, p), p) for p in points])


def _trained(section: SyntheticSection, width: int, steps: int):
    pack = _pack(section, width)
    for _ in range(steps):
        pack.train_step()
    return pack.U[0].numpy(), pack.D[0].numpy()


if __name__ == "__main__":
    main()
