"""The one error a user can cause in injection: a bad frequency, batch shape, tokenizer,
corpus source or folder. Its message names the value and the fix; the CLI shows it with exit
code 2 (`injection` cannot import `sweeps`, so it has its own exception)."""


class InjectionError(ValueError):
    """Bad input to task injection, corpora or reference scans."""
