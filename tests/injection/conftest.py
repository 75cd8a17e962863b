"""Built artefacts go to one temporary cache per test session, never the user's."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("sweeps-cache")


@pytest.fixture(scope="session")
def embedded_corpus(cache):
    """The embedded corpus, built once for the session (~10-25 s on 2 cores)."""
    from injection import corpus

    return corpus.embedded(cache=cache)
