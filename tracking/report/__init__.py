"""`sweeps reproduce`'s report: the paper's figures from a sweep's MLflow records, and its claims
computed from the same records. Reads stores through `tracking.query` only, so it runs (and is
tested) without Ray or training."""
