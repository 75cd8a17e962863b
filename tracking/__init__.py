"""MLflow: where a sweep's runs, metric histories and results live (CONTRACTS 4)."""
