"""The error a user can cause in injection: a bad frequency, batch shape, tokenizer, corpus
source or folder. Its message names the value and the fix; it belongs to the project's one
family (`UserError`: exit code 2 at the CLI) and stays a ValueError for library callers."""

from tracking.errors import UserError


class InjectionError(UserError, ValueError):
    """Bad input to task injection, corpora or reference scans."""
