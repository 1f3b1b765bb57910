"""The answer-renaming migration script: idempotent, and careful with the rest of the file."""

import pytest

from copier_migrations.rename_answer import rename

pytestmark = pytest.mark.render

ANSWERS = "# Changes here will be overwritten by Copier\n_commit: v0.9.0\nexample_api: false\n"


def test_rename_moves_the_answer_to_its_new_name() -> None:
    renamed = rename(ANSWERS, "example_api", "include_example_api")

    assert renamed == ANSWERS.replace("example_api:", "include_example_api:")


def test_rename_twice_changes_nothing_more() -> None:
    once = rename(ANSWERS, "example_api", "include_example_api")

    assert rename(once, "example_api", "include_example_api") == once


def test_rename_leaves_an_existing_new_answer_alone() -> None:
    both = ANSWERS + "include_example_api: true\n"

    assert rename(both, "example_api", "include_example_api") == both
