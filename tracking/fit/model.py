"""A sweep's fit as an MLflow pyfunc model, registered under the sweep's name.

MLflow stores this file as the model's code ("models from code") and `tracking/` beside it, so
`mlflow.pyfunc.load_model("models:/<sweep>@latest")` works in any process with MLflow
installed, from the fit's JSON alone; nothing here imports the trainables or Ray.
"""

from __future__ import annotations

import math
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, Schema
from mlflow.types.schema import AnyType

from tracking.curves import width_order
from tracking.fit.sweep_fit import SweepFit

FIT_ARTIFACT = "fit"  # the SweepFit JSON, as an artifact of the model
COLUMNS = ("rare_loss", "learned", "critical_width", "extrapolated")
SIGNATURE = ModelSignature(  # width: a number, or a ladder name such as "20M"
    inputs=Schema([ColSpec(AnyType(), "width"), ColSpec("double", "frequency"),
                   ColSpec("string", "task")]),
    outputs=Schema([ColSpec("double", "rare_loss"), ColSpec("boolean", "learned"),
                    ColSpec("double", "critical_width"), ColSpec("boolean", "extrapolated")]))


class FitModel(PythonModel):
    """predict(width, frequency, task) -> the fitted rare-task loss L(N), whether the width
    learns the task (N >= N*(f)), the critical width N*(f), and whether (width, frequency)
    lies outside the swept ones (`extrapolated`: the answer is not backed by a run)."""

    def load_context(self, context) -> None:
        self.fit = SweepFit.model_validate_json(Path(context.artifacts[FIT_ARTIFACT]).read_text())

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        rows = []
        for width, frequency, task in model_input[["width", "frequency", "task"]].itertuples(
                index=False):
            critical = self.critical_width(frequency, task)
            rows.append((self.fit.rare_loss(width, frequency, task),
                         not math.isnan(critical) and width_order(str(width)) >= critical,
                         critical, self.fit.extrapolated(width, frequency, task)))
        return pd.DataFrame(rows, columns=list(COLUMNS))

    def critical_width(self, frequency: float, task: str) -> float:
        """N*(f) alone: `load_model(...).unwrap_python_model().critical_width(1e-3, "add")`."""
        return self.fit.critical_width(float(frequency), task)


mlflow.models.set_model(FitModel())
