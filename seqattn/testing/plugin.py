"""Opt-in pytest plugin: ``pytest_plugins = ["seqattn.testing.plugin"]`` gives the fixture
``scorer_conformance``, a function that runs every conformance check on a scorer factory."""

import pytest

from seqattn.testing import check_scorer


@pytest.fixture
def scorer_conformance():
    return check_scorer
