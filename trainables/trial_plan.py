"""What every trial of a sweep is handed, and Tune's entry to it: light (no torch, no Ray
Train), so the sweep's driver, which only builds and hands these over, never imports them; the
trial's process does, in `session.run_trial`."""

from __future__ import annotations

from dataclasses import dataclass

from trainables.contract import Placement, PointPlan, PointRun, TrialConfig
from trainables.points import TRIAL_KEY, unpack
from tracking.layout import TRIAL_TAG, run_name, trial_name
from tracking.runs import PlannedRun
from tracking.tracker import open_runs


@dataclass(frozen=True)
class SweepPlan:
    """What every trial of a sweep shares, handed to Tune once (`tune.with_parameters`)."""

    trainable: str
    placement: Placement
    tracking_uri: str
    train_storage: str
    max_failures: int
    experiment_id: str
    parent_run_id: str  # the sweep's run: every grid point's run is its child
    run_tags: dict[str, str]  # on every grid point's run
    points: dict[str, PointPlan]  # by grid-point key

    def trial(self, axes: dict) -> TrialConfig:
        """The config of the trial Tune started with these grid axes (packed ones as lists),
        its grid points' runs made or found now, as their training starts."""
        planned = [self.points[p.key] for p in unpack(axes)]
        tags = {**self.run_tags, TRIAL_TAG: trial_name(axes)}
        run_ids = open_runs(self.tracking_uri, self.experiment_id, self.parent_run_id, [
            PlannedRun(key=p.point.key, params=p.params, tags=tags,
                       name=run_name(p.point.params())) for p in planned])
        return TrialConfig(trainable=self.trainable, tracking_uri=self.tracking_uri,
                           placement=self.placement,
                           points=[PointRun(plan=p, run_id=run_ids[p.point.key])
                                   for p in planned])


def tune_trial(config: dict, plan: SweepPlan) -> None:
    """Tune's function trainable: the trial's MLflow runs opened (so each starts when its
    training does), then `session.run_trial` trains them in the trial's process."""
    from trainables.session import run_trial

    trial = plan.trial(config[TRIAL_KEY])
    run_trial(trial, plan.train_storage, plan.max_failures)
