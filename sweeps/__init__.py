"""Scaling sweeps: specs, plans, the Tune driver, the command line and the Python API.

`import sweeps` stays light; the API's functions (`sweeps.run`, `curves`, `fit`, ...; see
`sweeps.api`) load on first use.
"""

from __future__ import annotations

API = ("load", "validate", "run", "resume", "status", "curves", "fit", "reproduce")
__all__ = list(API)


def __getattr__(name: str):
    if name in API:
        from sweeps import api

        return getattr(api, name)
    raise AttributeError(f"module 'sweeps' has no attribute {name!r}")
