"""Fixtures shared by the tests (helpers live in helpers.py)."""

import pytest

from helpers import tiny_recipe, write_recipe


@pytest.fixture
def recipe_file(tmp_path):
    return write_recipe(tmp_path / "tiny.yaml", tiny_recipe())
