"""`sweeps reproduce`: run (or reuse) the sweeps a study's figures need, then write its report.

A study is two modules found by experiment name (`STUDIES`): `sweeps.studies.<e>` names the
sweeps (`SCALES`, `sweeps_for(scale)`), `tracking.report.<e>` turns their runs into figures and
claims (`build`). Everything a user can get wrong (experiment, scale, a spec, the output
folder, a sweep of that name started from another spec) is refused before any sweep starts
or anything is written. Each sweep is then reused when finished, resumed when interrupted and
run when new, so running the command again after a failure or a Ctrl-C picks up where it was.

The report run (`kind=report`) lives in the experiment of the study's first sweep, a child of
that sweep's parent run, tagged with every sweep it read (`report.sweeps`): one report per
invocation, found beside the sweep a reader opens first (the phase diagram for synthetic).
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from sweeps import storage
from sweeps.spec import SweepSpec, apply_set, validate
from tracking.errors import UserError
from tracking.layout import SQLITE, sqlite_path

# experiment -> (the sweeps it needs, the report that reads them)
STUDIES = {
    "synthetic": ("sweeps.studies.synthetic", "tracking.report.synthetic"),
    "olmo": ("sweeps.studies.olmo", "tracking.report.olmo"),
}
NEW, INTERRUPTED, FINISHED = "new", "interrupted", "finished"


@dataclass(frozen=True)
class Study:
    experiment: str
    sweeps: ModuleType  # SCALES, sweeps_for
    report: ModuleType  # build


def study(experiment: str) -> Study:
    """The study's two modules; a study not in this checkout is bad input (exit 2)."""
    if experiment not in STUDIES:
        raise UserError(f"no study {experiment!r}: pick one of {', '.join(STUDIES)}")
    modules = []
    for name in STUDIES[experiment]:
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as err:
            if err.name is None or not name.startswith(err.name):
                raise  # a module it imports is missing: a broken install, not bad input
            raise UserError(f"the {experiment} study is not in this version of the project "
                            f"(no module {name}); `sweeps reproduce` knows "
                            f"{', '.join(e for e in STUDIES if _present(e))}") from None
    return Study(experiment, *modules)


def _present(experiment: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in STUDIES[experiment])


@dataclass
class Outcome:
    """How a reproduction ended: `failed` names the sweeps that did not finish (the report
    is then not written: `out` None)."""

    experiment: str
    scale: str
    sweeps: dict[str, str]  # role -> sweep name
    failed: list[str] = field(default_factory=list)
    out: Path | None = None
    report_run: str | None = None
    claims: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def plan(experiment: str, scale: str, out: Path, overrides: list[str], storage_: str,
         tracking_uri: str) -> tuple[Study, dict[str, SweepSpec], dict[str, str]]:
    """Everything checked, nothing started: the study, its validated specs by role (each
    with the `--set` overrides) and what each sweep's state is (new, interrupted,
    finished)."""
    chosen = study(experiment)
    if scale not in chosen.sweeps.SCALES:
        raise UserError(f"--scale {scale!r} is not a scale of the {experiment} study: pick "
                        f"one of {', '.join(chosen.sweeps.SCALES)}")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file: the report is a folder (index.html, "
                        "claims.json, figures/); pass a folder")
    specs = {role: validate(apply_set(copy.deepcopy(raw), overrides))
             for role, raw in chosen.sweeps.sweeps_for(scale).items()}
    states = {role: sweep_state(spec, storage_, tracking_uri) for role, spec in specs.items()}
    from sweeps.runner import check_local_resources

    for role, spec in specs.items():
        if states[role] != FINISHED:
            try:  # a cluster scale on a laptop: refused now, not after the first sweeps ran
                check_local_resources(spec)
            except UserError as err:
                raise UserError(f"--scale {scale}: {err}; or run the whole reproduction as "
                                "a job on the cluster (docs/howto/reproduce.md)") \
                    from None
    return chosen, specs, states


def sweep_state(spec: SweepSpec, storage_: str, tracking_uri: str) -> str:
    """new: no state anywhere; finished: every grid point's run finished (or, searched,
    inferred from the others); interrupted: the rest. A sweep of the same name started from another spec is refused: its runs would not
    be this study's."""
    from sweeps.runner import STATE_FILE, Target, saved_spec

    target = Target(storage_, tracking_uri)
    if not storage.exists(f"{target.sweep_dir(spec.name)}/{STATE_FILE}"):
        if _tracked(spec.name, tracking_uri):
            raise UserError(f"sweep {spec.name!r} has runs in {tracking_uri} but no state in "
                            f"{storage_}: pass the --storage it was run with")
        return NEW
    saved = saved_spec(target, spec.name)
    if saved.model_dump(mode="json") != spec.model_dump(mode="json"):
        raise UserError(f"sweep {spec.name!r} in {storage_} was started from another spec "
                        "than this version's study: report from a fresh --storage and "
                        "--tracking-uri, or remove that sweep's folder and MLflow experiment")
    from tracking.layout import INFERRED
    from tracking.query import open_reader, read_rows

    rows = read_rows(open_reader(tracking_uri), spec.name) if _tracked(spec.name,
                                                                        tracking_uri) else []
    return FINISHED if rows and all(r.state in ("FINISHED", INFERRED) for r in rows) \
        else INTERRUPTED


def _tracked(name: str, tracking_uri: str) -> bool:
    if tracking_uri.startswith(SQLITE) and not sqlite_path(tracking_uri).is_file():
        return False  # no store yet: opening one would create it
    from tracking.query import open_reader

    return open_reader(tracking_uri).experiment_id(name) is not None


def reproduce(experiment: str, scale: str, out: Path, overrides: list[str], storage_: str,
              tracking_uri: str, say=print) -> Outcome:
    """Run what is missing of the study's sweeps, then write and log its report."""
    from sweeps import runner

    chosen, specs, states = plan(experiment, scale, out, overrides, storage_, tracking_uri)
    outcome = Outcome(experiment, scale, {role: spec.name for role, spec in specs.items()})
    target = runner.Target(storage_, tracking_uri)
    started = time.time()
    for i, (role, spec) in enumerate(specs.items(), 1):
        head = f"[{i}/{len(specs)}] {role}: sweep {spec.name}"
        if states[role] == FINISHED:
            say(f"{head} finished earlier, reused")
            continue
        say(f"{head}, {'resuming' if states[role] == INTERRUPTED else 'running'} "
            f"({_elapsed(started)} so far)")
        failed = (runner.resume(spec.name, target) if states[role] == INTERRUPTED
                  else runner.run(spec, target))
        if failed:  # failed or interrupted (Ctrl-C): the next run of the command resumes
            outcome.failed.append(spec.name)
            say(f"{head}: {len(failed)} grid points did not finish; the rest is not started")
            return outcome
    say(f"writing the report to {out} ({_elapsed(started)} so far)")
    outcome.out, outcome.claims, outcome.report_run = write_report(
        chosen, scale, outcome.sweeps, out, tracking_uri)
    return outcome


def write_report(chosen: Study, scale: str, sweeps: dict[str, str], out: Path,
                 tracking_uri: str) -> tuple[Path, list, str]:
    """The study's figures and claims from the runs, the page, and the report run."""
    from tracking.query import open_reader
    from tracking.report import page
    from tracking.report.claims import Report

    figures = out / page.FIGURES
    figures.mkdir(parents=True, exist_ok=True)
    reader = open_reader(tracking_uri)
    made, claims = chosen.report.build(reader, sweeps, figures)
    report = Report(chosen.experiment, scale, list(sweeps.values()), made, claims,
                    provenance(reader, list(sweeps.values())))
    page.write(report, out)
    return out, claims, log_report(report, out, tracking_uri)


def provenance(reader, sweeps: list[str]):
    """The report's date, the judging code's commit, its sweeps' seeds, training time and
    parent runs in MLflow's UI."""
    from sweeps.sweep_run import code_version
    from tracking.layout import iso_time, run_address
    from tracking.query import read_sweep
    from tracking.report.claims import Provenance

    code = code_version()
    commit = code.get("mlflow.source.git.commit", code.get("code.version", "unknown"))
    if code.get("code.dirty") == "true":
        commit += " + changes"
    seeds, runtime_ms, links = set(), 0, {}
    for name in sweeps:
        sweep = read_sweep(reader, name)
        seeds |= {int(p["seed"]) for p in sweep.planned.values()}
        starts = [r.start_time for r in sweep.trials if r.start_time]
        ends = [r.end_time for r in sweep.trials if r.end_time]
        runtime_ms += max(ends) - min(starts) if starts and ends else 0
        if sweep.parent is not None:
            links[name] = run_address(reader.uri, sweep.experiment_id, sweep.parent.run_id)
    return Provenance(created=iso_time(time.time()), commit=commit, seeds=sorted(seeds),
                      runtime_s=runtime_ms / 1000, links=links)


def log_report(report, out: Path, tracking_uri: str) -> str:
    """The `kind=report` run in the first sweep's experiment, its files as artifacts and
    each claim's verdict as a metric (`claim/<id>`: 1 holds, 0 not; absent if not judged)."""
    from mlflow.entities import Metric, Param

    from tracking.layout import KIND_REPORT
    from tracking.runs import child_run, connect, experiment_id

    client = connect(tracking_uri)
    run = child_run(client, experiment_id(client, report.sweeps[0]), KIND_REPORT,
                    f"report {report.experiment} {report.scale}",
                    tags={"report.experiment": report.experiment, "report.scale": report.scale,
                          "report.sweeps": ",".join(report.sweeps)})
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    client.log_batch(run_id, params=[Param("experiment", report.experiment),
                                     Param("scale", report.scale)],
                     metrics=[Metric(f"claim/{c.id}", float(c.holds), now, 0)
                              for c in report.claims if c.holds is not None])
    client.log_artifacts(run_id, str(out))
    client.set_terminated(run_id)
    return run_id


def _elapsed(started: float) -> str:
    seconds = int(time.time() - started)
    return f"{seconds // 60}m{seconds % 60:02d}s"
