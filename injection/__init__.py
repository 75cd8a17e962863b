"""Tasks injected into a pretraining token stream at exact frequencies (CONTRACTS 6)."""
