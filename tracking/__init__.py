"""MLflow: where a sweep's runs, metric histories and results live (CONTRACTS 4)."""
import os

# MLflow 3.18's telemetry thread sets and unsets an environment variable while other threads
# read os.environ (a request's proxy lookup then fails with KeyError), and its reports cannot
# leave an offline cluster anyway. Off unless the user says otherwise.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
