"""A trial's process, as Ray stops it: in a real Ray worker, with Ray's own SIGTERM handler."""

from __future__ import annotations

import contextlib
import io
import signal
import sys
import weakref

import pytest


class Finalized:
    """Something whose collection runs a weakref callback."""


@pytest.mark.slow
def test_a_sigterm_inside_a_finalizer_prints_nothing_other_errors_still_do(ray_cluster):
    ray = ray_cluster
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # not importable there

    @ray.remote(num_cpus=0)
    class TrialProcess:
        def collect(self, callback, quiet: bool) -> str:
            """What the process prints while `callback` runs as a weakref callback."""
            from trainables.session import quiet_sigterm_in_finalizers

            if quiet:
                quiet_sigterm_in_finalizers()
            printed = io.StringIO()
            with contextlib.redirect_stderr(printed):
                thing = Finalized()
                ref = weakref.ref(thing, callback)
                del thing
            assert ref() is None
            return printed.getvalue()

    def sigterm(_):  # Ray's handler runs as the signal returns: inside the callback
        signal.raise_signal(signal.SIGTERM)

    def fails(_):
        raise ValueError("a finalizer's own error")

    process = TrialProcess.remote()
    try:
        loud = ray.get(process.collect.remote(sigterm, quiet=False))
        assert "Exception ignored" in loud and "SystemExit" in loud, loud  # the noise, unfixed
        assert ray.get(process.collect.remote(sigterm, quiet=True)) == ""
        other = ray.get(process.collect.remote(fails, quiet=True))
        assert "ValueError: a finalizer's own error" in other, other
    finally:
        ray.kill(process)
