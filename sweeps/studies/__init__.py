"""The paper's studies for `sweeps reproduce`: per experiment, the sweeps its figures need.

Each module (`synthetic`, `olmo`) exports `SCALES` (the scales it knows, smallest first) and
`sweeps_for(scale) -> {role: spec dict}`: complete sweep specs, named
`repro-<experiment>-<scale>-<role>`, valid under `sweeps.spec`. Its report half is
`tracking.report.<experiment>.build`, which reads those sweeps back by role.
"""
