"""Tools for testing code that uses nursery: a virtual clock, waiting for the
run to go idle, checkpoint assertions, a sequencer for orderings, and the
pytest plugin."""

from .._core import MockClock, wait_all_tasks_blocked
from ._checkpoints import assert_checkpoints, assert_no_checkpoints
from ._sequencer import Sequencer

__all__ = [
    "MockClock",
    "Sequencer",
    "assert_checkpoints",
    "assert_no_checkpoints",
    "wait_all_tasks_blocked",
]

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("nursery."):
        try:
            _obj.__module__ = "nursery.testing"
        except (AttributeError, TypeError):
            pass
del _name, _obj
