"""Tools for testing code that uses nursery: a virtual clock, waiting for the
run to go idle, checkpoint assertions, a sequencer for orderings, in-memory
streams, the stream conformance checks, and the pytest plugin."""

from .._core import MockClock, wait_all_tasks_blocked
from ._check_streams import check_half_closeable_stream, check_one_way_stream, check_two_way_stream
from ._checkpoints import assert_checkpoints, assert_no_checkpoints
from ._lockstep_streams import lockstep_stream_one_way_pair, lockstep_stream_pair
from ._memory_streams import (
    MemoryReceiveStream,
    MemorySendStream,
    memory_stream_one_way_pair,
    memory_stream_pair,
    memory_stream_pump,
)
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
    # in-memory streams and the stream conformance checks
    "MemorySendStream",
    "MemoryReceiveStream",
    "memory_stream_pump",
    "memory_stream_one_way_pair",
    "memory_stream_pair",
    "lockstep_stream_one_way_pair",
    "lockstep_stream_pair",
    "check_one_way_stream",
    "check_two_way_stream",
    "check_half_closeable_stream",
]

claim_public_names(globals(), "nursery.testing")
