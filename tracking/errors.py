"""The project's one family of errors a user can cause.

Every package raises a subclass of `UserError` for bad input (a spec, a flag, a name, a data
file, an unreachable or wrong tracking store); its message names what is wrong and how to fix
it. The CLI turns any of them into that message and exit code 2 in one place
(`sweeps.cli.main`); the Python API lets them through. Anything else is a bug and keeps its
traceback. It lives here, at the end of the one-way data flow, because every package may
import `tracking/` and `tracking/` imports none of them.
"""


class UserError(Exception):
    """Bad input the user can fix; the message says what and how."""


class TrackingError(UserError):
    """The tracking store cannot be used: unreachable, missing, or refusing the credential."""


class UnknownSweep(UserError, LookupError):
    """No sweep of that name in the tracking store or the storage."""
