"""MLflow: where a sweep's runs, metric histories and results live (CONTRACTS 4).

At the top, the write path (`tracker`, `logger`, `metric_rows`, `runs`, `registry`,
`model_files`) and the read path (`query`, `curves`), over the layout's names (`layout`).
Beside them, the analyses that read finished runs: the fit (`fit/`) and the paper's report
(`report/`), both drawing in the one figure style below them (`style`).
"""
import os

# MLflow 3.18's telemetry thread sets and unsets an environment variable while other threads
# read os.environ (a request's proxy lookup then fails with KeyError), and its reports cannot
# leave an offline cluster anyway. Off unless the user says otherwise.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
