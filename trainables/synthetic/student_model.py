"""A trained synthetic student as an MLflow pyfunc model: one per grid point, registered as a
version of `<sweep>.trials` (tracking/registry.py). Self-contained: numpy and pandas only.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, Schema

STATE_ARTIFACT = "student"  # .npz: encoder U (d x N), decoders D (K r x N), features_per_task



def signature(dim: int, features: int) -> ModelSignature:
    return ModelSignature(
        inputs=Schema([ColSpec("double", f"x{i}") for i in range(dim)] + [ColSpec("long", "task")]),
        outputs=Schema([ColSpec("double", f"y{j}") for j in range(features)]))


class StudentModel(PythonModel):
    """predict(x0..x{d-1}, task) -> task k's prediction D_k U^T x, as columns y0..y{r-1}."""

    def load_context(self, context) -> None:
        with np.load(context.artifacts[STATE_ARTIFACT]) as state:
            self.encoder, self.decoders = state["encoder"], state["decoders"]
            self.features = int(state["features_per_task"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        x = model_input[[f"x{i}" for i in range(self.encoder.shape[0])]].to_numpy(float)
        every_task = (x @ self.encoder) @ self.decoders.T  # (B, K r)
        rows = model_input["task"].to_numpy(int)[:, None] * self.features
        y = np.take_along_axis(every_task, rows + np.arange(self.features), axis=1)
        return pd.DataFrame(y, columns=[f"y{j}" for j in range(self.features)])


mlflow.models.set_model(StudentModel())
