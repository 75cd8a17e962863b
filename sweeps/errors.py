"""Errors of the spec and the command line, in the project's one family (`UserError`)."""

import difflib

from tracking.errors import UserError


class SpecError(UserError):
    """A sweep spec (file or --set override) that breaks a rule."""


def did_you_mean(name: str, choices) -> str:
    """`; did you mean 'demo'?`, or nothing when no name is close: for a typo in a sweep's
    name, a spec field, a `--set` key or a column."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


__all__ = ["SpecError", "UserError", "did_you_mean"]
