"""Sweep specs, grids, the Tune driver and the `sweeps` command line."""
