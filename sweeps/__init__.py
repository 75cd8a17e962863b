"""Scaling sweeps: how a model's width decides what it learns of a rare task, run as Ray Tune
sweeps tracked in MLflow.

The Python API (`help(sweeps.run)` and so on for each; `sweeps.api` has the details):
- `load(spec, overrides, name)`: a validated spec from a YAML path, a dict or a spec;
- `validate(spec, overrides, name)`: the plan, without starting or writing anything;
- `run(spec, overrides, name, storage=, tracking_uri=, restart=)`: run a sweep to the end;
- `resume(name, storage=, tracking_uri=)`: finish an interrupted sweep;
- `status(name, tracking_uri=)`: one row per grid point, its state and final metrics;
- `curves(name, tracking_uri=)`: the final metrics as a pandas DataFrame;
- `fit(name, tracking_uri=, log=)`: scaling laws, critical widths and regimes;
- `reproduce(experiment, scale, out, ...)`: the paper's figures and claims.

Example:
    >>> import sweeps
    >>> sweeps.run("sweeps/presets/demo.yaml", name="demo-api").ok
    True
    >>> sweeps.curves("demo-api")[["width", "frequency", "task", "rare/loss"]]

`import sweeps` stays light: the functions load on first use.
"""

from __future__ import annotations

API = ("load", "validate", "run", "resume", "status", "curves", "fit", "reproduce")
__all__ = list(API)


def __getattr__(name: str):
    if name in API:
        from sweeps import api

        return getattr(api, name)
    raise AttributeError(f"module 'sweeps' has no attribute {name!r}; the API is "
                         f"{', '.join(API)}")


def __dir__() -> list[str]:
    return sorted(API)
