"""Shared test configuration for nursery's test suite.

The nursery pytest plugin (``nursery_mode``, clock fixtures, ...) is
registered through the ``pytest11`` entry point in pyproject.toml, so no
``pytest_plugins`` line is needed here.
"""
