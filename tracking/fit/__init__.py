"""A sweep's fit: the scaling laws (`laws`), the fit of a whole sweep (`sweep_fit`), its plots,
its MLflow run and its registered pyfunc (`model`). Reads finished rows; writes one run."""
