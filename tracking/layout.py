"""The names of the MLflow layout (CONTRACTS 4) that readers and writers share: run kinds,
artifact paths, registered-model names, where a sqlite store's file is. Light: no MLflow."""

from pathlib import Path
from urllib.parse import unquote

KIND_TRIAL = "trial"  # a grid point's run
KIND_FIT = "fit"  # a `sweeps fit` run
FIT_FILE = "fit.json"  # the fit run's SweepFit
MODEL_PATH = "model"  # artifact path of a run's model
AXES = ("width", "frequency", "task", "seed")  # grid axes: run params and model-version tags


SQLITE = "sqlite:///"
PAGE = 1000  # results per search request (MLflow's largest page for runs)


def sqlite_path(uri: str) -> Path:
    """The database file of a `sqlite:///` URI (relative to the working folder unless it
    starts with a fourth slash)."""
    return Path(unquote(uri[len(SQLITE):]))


def trials_name(sweep: str) -> str:
    """The registered model of a sweep's trained grid-point models; the dot cannot occur in
    a sweep name, so no sweep's fit shares it."""
    return f"{sweep}.trials"
