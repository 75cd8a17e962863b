"""Errors a user can cause: each message names what is wrong and how to fix it.

The CLI turns any `UserError` into that message on stderr and exit code 2, with no traceback.
Everything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input from the user: a spec, a flag, a name, an unreachable service."""


class SpecError(UserError):
    """A sweep spec (file or --set override) that breaks a rule."""
