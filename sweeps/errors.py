"""Errors of the spec and the command line, in the project's one family (`UserError`)."""

from tracking.errors import UserError


class SpecError(UserError):
    """A sweep spec (file or --set override) that breaks a rule."""


__all__ = ["SpecError", "UserError"]
