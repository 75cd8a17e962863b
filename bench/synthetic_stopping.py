"""Steps and time of a synthetic grid: a fixed budget vs stopping once converged, in one run.

    .venv/bin/python -m bench.synthetic_stopping [--spec sweeps/presets/demo.yaml] [--set k=v]...

The spec's grid is trained without Ray, one pack per trial as `sweeps run` packs it, twice:
`fixed`, every point for the theory's expected steps (`tolerance: 0`, the old default budget),
and `adaptive`, the default: a cap of 3x that, each point stopping once it has converged
(`trainables/synthetic/stopping.py`). Printed per variant: grid-point steps, wall seconds, the
largest relative distance of a final trained-model loss from the width's optimum, and grid
points whose `rare/learned` differs from the theory's; then the ratios adaptive / fixed.
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch

from sweeps.spec import load_spec
from trainables.points import Point
from trainables.synthetic import SYNTHETIC, SyntheticSection, theory
from trainables.synthetic.student import Pack
from trainables.synthetic.trainable import member_for, setup_for, spectrum


def run(section: SyntheticSection, grid) -> dict:
    """Train every trial's pack; totals and the worst distance from the optimum."""
    point_steps, worst, wrong, start = 0, 0.0, [], time.perf_counter()
    for width, task in itertools.product(grid.width, grid.task):
        points = [Point(width, f, task, s) for f in grid.frequency for s in grid.seed]
        resolved = [SYNTHETIC.resolve(section, p) for p in points]
        pack = Pack(setup_for(resolved[0], width),
                    [member_for(s, p) for s, p in zip(resolved, points)])
        final = {}
        for metrics, due in pack.train([s.steps for s in resolved],
                                       [s.steps for s in resolved]):
            for j in (j for j, d in enumerate(due) if d):
                final[j] = (pack.step, metrics["model_loss"][j].item(),
                            metrics["rare/learned"][j].item())
        for j, point in enumerate(points):
            steps, loss, learned = final[j]
            best = theory.optimum(spectrum(section, point), width)
            point_steps += steps
            worst = max(worst, (loss - best.loss) / max(best.loss, 1e-3))
            if learned != float(best.rare_loss <= section.learned_threshold):
                wrong.append(point.key)
    return {"point_steps": point_steps, "seconds": time.perf_counter() - start,
            "worst": worst, "wrong": wrong}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="sweeps/presets/demo.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    spec = load_spec(args.spec, args.overrides)
    variants = {"fixed": spec.synthetic.model_copy(update={"tolerance": 0.0}),
                "adaptive": spec.synthetic}
    points = len(list(itertools.product(*(getattr(spec.grid, a) for a in
                                          ("width", "frequency", "task", "seed")))))
    print(f"{spec.name}: {points} grid points, {spec.synthetic.mode}, threads={args.threads}")
    print(f"{'variant':<9} {'point-steps':>12} {'wall s':>8} {'worst rel. loss':>16} "
          f"{'learned != theory':>18}")
    results = {}
    for name, section in variants.items():
        r = results[name] = run(section, spec.grid)
        print(f"{name:<9} {r['point_steps']:>12} {r['seconds']:>8.1f} {r['worst']:>16.2%} "
              f"{len(r['wrong']):>18}" + (f"  {r['wrong']}" if r["wrong"] else ""))
    fixed, adaptive = results["fixed"], results["adaptive"]
    print(f"adaptive / fixed: steps {adaptive['point_steps'] / fixed['point_steps']:.2f}, "
          f"wall {adaptive['seconds'] / fixed['seconds']:.2f}")


if __name__ == "__main__":
    main()
