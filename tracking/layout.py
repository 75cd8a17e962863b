"""The names of the MLflow layout (CONTRACTS 4) that readers and writers share: run kinds,
artifact paths, registered-model names. Light: no MLflow import."""

KIND_TRIAL = "trial"  # a grid point's run
KIND_FIT = "fit"  # a `sweeps fit` run
FIT_FILE = "fit.json"  # the fit run's SweepFit
MODEL_PATH = "model"  # artifact path of a run's model
AXES = ("width", "frequency", "task", "seed")  # grid axes: run params and model-version tags


def trials_name(sweep: str) -> str:
    """The registered model of a sweep's trained grid-point models; the dot cannot occur in
    a sweep name, so no sweep's fit shares it."""
    return f"{sweep}.trials"
