"""Tools for testing code that uses nursery: a virtual clock, waiting for the
run to go idle, checkpoint assertions, and the pytest plugin."""

from .._core import MockClock, wait_all_tasks_blocked

__all__ = ["MockClock", "wait_all_tasks_blocked"]
