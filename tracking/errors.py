"""The project's one family of errors a user can cause.

Every package raises a subclass of `UserError` for bad input (a spec, a flag, a name, a data
file, an unreachable or wrong tracking store); its message names what is wrong and how to fix
it. The CLI turns any of them into that message and exit code 2 in one place
(`sweeps.cli.main`); the Python API lets them through. Anything else is a bug and keeps its
traceback. It lives here, at the end of the one-way data flow, because every package may
import `tracking/` and `tracking/` imports none of them.
"""

import os


class UserError(Exception):
    """Bad input the user can fix; the message says what and how."""


class TrackingError(UserError):
    """The tracking store cannot be used: unreachable, missing, or refusing the credential."""


class TrackingAuthError(TrackingError):
    """The tracking server answered and refused these credentials (HTTP 401) or this user
    (403): a different fix from an unreachable one, so a different message."""


def refusal(uri: str, status: int) -> str:
    """What a server with authentication on said, and the two variables that fix it."""
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if status == 403:
        what = f"refused MLflow user {user!r} access (HTTP 403): ask its admin for READ"
    elif user:
        what = f"refused MLflow user {user!r}: wrong password or no such user (HTTP 401)"
    else:
        what = "requires a login and none was given (HTTP 401)"
    return (f"MLflow tracking server {uri} {what}.\nSet MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD to your MLflow user and password (the cluster's are in "
            "~/.scaling-sweeps/mlflow.env: `set -a; . ~/.scaling-sweeps/mlflow.env; set +a`; "
            'docs/howto/cluster.md).')


class UnknownSweep(UserError, LookupError):
    """No sweep of that name in the tracking store or the storage."""
