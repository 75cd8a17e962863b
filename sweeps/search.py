"""`search: critical_width` as a Ray Tune `Searcher`: Tune asks it for the next grid point to
train (`suggest`) and tells it when one ended (`on_trial_complete`), so a searched sweep
schedules, checkpoints, resumes and runs on a cluster like a grid sweep. The boundary logic is
`sweeps.critical_width`'s; this module maps grid points to its cells and back.

One grid point per trial (no packing: a pack would train the cells a search leaves out). A
point's verdict is the trainable's own rule on its run's final metrics in MLflow, the same
`Measure` the curves and the fit read: synthetic, `rare/loss` <= `learned_threshold` (its final
`rare/learned`); OLMo, `rare/test_acc` >= its learned accuracy. What the search knows (every
cell trained or inferred, every contradiction) is the parent run's `search.json`, rewritten as
each point ends; `sweeps curves` and the fit read the inferred cells from it.
"""

from __future__ import annotations

import json
import logging
import pickle

from ray.tune.search import SearchGenerator, Searcher

from sweeps import critical_width as cw
from sweeps.critical_width import Geometry, chain_guesses, costs
from tracking.layout import INFERRED, KIND_TRIAL, SEARCH_FILE, SEARCH_TAG
from trainables.points import TRIAL_KEY, Point

logger = logging.getLogger(__name__)
CRITICAL_WIDTH = "critical_width"


class CriticalWidthSearcher(Searcher):
    """Suggests the next cell of the chain with the fewest points in flight (chains are
    independent, so they fill the trial slots together), at most `limit` in flight; FINISHED
    once every cell is decided and every contradiction judged, or left undecided by a point
    whose trial failed. Such a point is retried on resume: Tune runs an errored trial again
    (`resume_errored`), and the restored searcher waits for it (`set_state`).

    It limits the trials in flight itself rather than through Tune's `ConcurrencyLimiter`,
    which forgets a trial once it errored and so would not pass on the retried trial's end."""

    def __init__(self, geometry: Geometry, cost: list, trainable: str,
                 tracking_uri: str, experiment_id: str, parent_run_id: str,
                 limit: int | None = None, guesses: list | None = None):
        super().__init__()
        self.geometry, self.cost, self.trainable = geometry, cost, trainable
        self.tracking_uri, self.experiment_id = tracking_uri, experiment_id
        self.parent_run_id, self.limit = parent_run_id, limit
        self.chains = [cw.Chain(len(geometry.widths), len(geometry.frequencies), guess)
                       for guess in guesses or [None] * len(geometry.chains)]
        self.pending: dict[str, tuple[int, cw.Cell]] = {}  # trial id -> (chain, cell)
        self.errored: dict[str, tuple[int, cw.Cell]] = {}  # failed trials: retried on resume

    def suggest(self, trial_id: str):
        if self.limit and len(self.pending) >= self.limit:
            return None
        order = sorted(range(len(self.chains)), key=lambda c: sum(
            1 for chain, _ in self.pending.values() if chain == c))
        for c in order:
            cell = self.chains[c].next(self._pending(c), self.cost[c])
            if cell is not None:
                self.pending[trial_id] = (c, cell)
                return {TRIAL_KEY: self.geometry.point(c, cell).params()}
        if all(chain.done(self._pending(c)) for c, chain in enumerate(self.chains)):
            return Searcher.FINISHED
        return None  # the next cell depends on a point still training

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        if trial_id not in self.pending:
            return
        c, cell = self.pending.pop(trial_id)
        learned = None if error else self._verdict(self.geometry.point(c, cell))
        if learned is None:
            self.chains[c].fail(cell)
            if error:  # Tune runs it again on resume; without a verdict it stays lost
                self.errored[trial_id] = (c, cell)
        else:
            self.chains[c].record(cell, learned)
        self.publish()

    def _pending(self, chain: int) -> set[cw.Cell]:
        return {cell for c, cell in self.pending.values() if c == chain}

    def _verdict(self, point: Point) -> bool | None:
        """The trainable's rule on the point's final metrics; None without a finished run."""
        from tracking.query import open_reader
        from trainables import catalog

        runs = [r for r in open_reader(self.tracking_uri).runs(self.experiment_id, KIND_TRIAL)
                if r.tags.get("trial_key") == point.key and r.status == "FINISHED"]
        if not runs:
            return None
        measure = catalog.get(self.trainable).measure(runs[0].params)
        score = runs[0].metrics.get(measure.score)
        return None if score is None else measure.learned(score)

    def summary(self) -> dict:
        return summary(self.geometry, self.chains)

    def publish(self) -> None:
        """search.json and the contradiction count on the parent run; a store that is away
        gets them at the next point's end."""
        from mlflow import MlflowClient

        try:
            client = MlflowClient(self.tracking_uri)
            text = json.dumps(self.summary(), indent=1)
            client.log_text(self.parent_run_id, text, SEARCH_FILE)
            client.set_tag(self.parent_run_id, SEARCH_TAG, CRITICAL_WIDTH)
            client.set_tag(self.parent_run_id, "search.contradictions",
                           str(sum(len(c.contradictions) for c in self.chains)))
        except Exception as err:  # the tracking store is away: the next completion retries
            logger.warning("could not record the search's state in MLflow: %s", err)

    def get_state(self) -> dict:
        return {"chains": self.chains, "pending": self.pending, "errored": self.errored}

    def set_state(self, state: dict) -> None:
        """Restored on resume: the errored trials, which Tune runs again, are in flight."""
        self.chains, self.pending = state["chains"], state["pending"]
        for trial_id, (c, cell) in state["errored"].items():
            self.chains[c].failed.discard(cell)
            self.pending[trial_id] = (c, cell)
        self.errored = {}

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.set_state(pickle.load(f))


class ResumedSearch(SearchGenerator):
    """Tune's wrapper of a `Searcher`, but a restored one asks its searcher again instead of
    restoring "finished": a search that ended with a failed point is finished for this run,
    not for the resume that retries the point and decides the cells it left open."""

    def set_state(self, state: dict) -> None:
        super().set_state({**state, "finished": False})


def summary(geometry: Geometry, chains: list[cw.Chain]) -> dict:
    """The search as `search.json` holds it: every decided cell with its source, N*(f) per
    chain (beside the trainable's prediction, where it has one), every contradiction met and
    how it was judged, and every cell without a verdict: a point whose trial failed (and no
    other verdict implies its), which leaves its N*(f) open until `sweeps resume` trains it
    again, or one not trained yet (interrupted)."""
    out = {"search": CRITICAL_WIDTH, "cells": [], "critical": [], "contradictions": [],
           "undecided": []}
    for c, chain in enumerate(chains):
        task, seed = geometry.chains[c]
        for cell, (learned, source) in chain.verdicts().items():
            key = geometry.point(c, cell).key
            if source is not None:
                out["cells"].append({"key": key, "learned": learned, "source": source})
            if learned is None:
                out["undecided"].append({"key": key, "failed": source == cw.FAILED})
        guess = chain.guess or [None] * len(geometry.frequencies)
        out["critical"] += [{"task": task, "seed": seed, "frequency": f,
                             "width": width(geometry, i), "predicted": width(geometry, g)}
                            for f, i, g in zip(geometry.frequencies, chain.critical(), guess)]
        out["contradictions"] += [{
            "task": task, "seed": seed,
            "learned": geometry.point(c, k.learned).key,
            "not_learned": geometry.point(c, k.not_learned).key,
            "outliers": None if k.open else [geometry.point(c, o).key for o in k.outliers]}
            for k in chain.contradictions]
    out["trained"] = sum(cell["source"] in (cw.TRAINED, cw.OUTLIER) for cell in out["cells"])
    out["inferred"] = sum(cell["source"] == cw.INFERRED for cell in out["cells"])
    return out


def width(geometry: Geometry, index: int | None):
    """A column's boundary as a width: None where unknown or past the widest."""
    return geometry.widths[index] if index is not None and index < len(geometry.widths) else None


def tune_settings(spec, planned, sweep, limit: int | None) -> tuple[dict, dict]:
    """Tune's param space and TuneConfig settings for the spec's search: a grid over the
    packed trials (`sweeps.packing`), at most `limit` in flight, or this searcher, one grid
    point per trial, Tune creating trials until it says FINISHED (num_samples: at most every
    grid point), the searcher keeping to `limit` itself."""
    from ray import tune

    from sweeps import packing

    if spec.search != CRITICAL_WIDTH:
        return ({TRIAL_KEY: tune.grid_search(packing.trials(spec, planned))},
                {"max_concurrent_trials": limit})
    geometry = Geometry.of(spec.grid)
    searcher = CriticalWidthSearcher(geometry, costs(geometry, spec.runs_as, planned),
                                     spec.trainable, sweep.tracking_uri, sweep.experiment_id,
                                     sweep.parent_run_id, limit,
                                     chain_guesses(spec, geometry, planned))
    return {}, {"search_alg": ResumedSearch(searcher), "num_samples": len(planned)}


def inferred(spec, tracking_uri: str) -> set[str]:
    """The grid points a search decided without training them: done, though never run (none
    for a grid, which reads no rows for it)."""
    if spec.search != CRITICAL_WIDTH:
        return set()
    from tracking.query import open_reader, read_rows

    return {r.key for r in read_rows(open_reader(tracking_uri), spec.name)
            if r.state == INFERRED}
