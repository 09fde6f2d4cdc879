"""Tools for testing code that uses nursery: a virtual clock, waiting for the
run to go idle, checkpoint assertions, a sequencer for orderings, and the
pytest plugin."""

from .._core import MockClock, wait_all_tasks_blocked
from ._checkpoints import assert_checkpoints, assert_no_checkpoints
from ._network import open_stream_to_socket_listener
from ._sequencer import Sequencer

from .._public import claim_public_names

__all__ = [
    "MockClock",
    "Sequencer",
    "assert_checkpoints",
    "assert_no_checkpoints",
    "open_stream_to_socket_listener",
    "wait_all_tasks_blocked",
]

claim_public_names(globals(), "nursery.testing")
