"""nursery: structured concurrency for Python, with asyncio on the same kernel.

The public, trio-shaped API: runs, nurseries, cancel scopes and timeouts.
Low-level pieces live in :mod:`nursery.lowlevel`; test helpers in
:mod:`nursery.testing`.
"""

from ._core import (
    TASK_STATUS_IGNORED,
    BrokenResourceError,
    BusyResourceError,
    Cancelled,
    CancelScope,
    ClosedResourceError,
    EndOfChannel,
    Nursery,
    NurseryInternalError,
    RunFinishedError,
    TaskStatus,
    TooSlowError,
    WouldBlock,
    current_time,
    open_nursery,
    run,
    sleep,
    sleep_forever,
    sleep_until,
)
from ._abc import AsyncResource, HalfCloseableStream, Listener, ReceiveStream, SendStream, Stream, aclose_forcefully
from ._channel import MemoryChannelStatistics, MemoryReceiveChannel, MemorySendChannel, open_memory_channel
from ._event import Event, EventStatistics
from ._highlevel_socket import SocketListener, SocketStream
from ._open_tcp_listeners import open_tcp_listeners, serve_tcp
from ._open_tcp_stream import open_tcp_stream
from ._serve_listeners import serve_listeners
from ._unix_sockets import open_unix_listener, open_unix_socket
from ._public import claim_public_names
from ._signals import open_signal_receiver
from ._ssl import NeedHandshakeError, SSLListener, SSLStream
from ._ssl_helpers import open_ssl_over_tcp_listeners, open_ssl_over_tcp_stream, serve_ssl_over_tcp
from ._stapled import StapledStream
from ._subprocess import Process, run_process
from ._sync import (
    CapacityLimiter,
    CapacityLimiterStatistics,
    Condition,
    ConditionStatistics,
    Lock,
    LockStatistics,
    Semaphore,
    SemaphoreStatistics,
    StrictFIFOLock,
)
from ._timeouts import current_effective_deadline, fail_after, fail_at, move_on_after, move_on_at

__version__ = "0.1.0.dev0"

__all__ = [
    "run",
    "open_nursery",
    "Nursery",
    "TaskStatus",
    "TASK_STATUS_IGNORED",
    "CancelScope",
    "move_on_after",
    "move_on_at",
    "fail_after",
    "fail_at",
    "current_effective_deadline",
    "current_time",
    "sleep",
    "sleep_until",
    "sleep_forever",
    "Event",
    "EventStatistics",
    "open_memory_channel",
    "MemorySendChannel",
    "MemoryReceiveChannel",
    "MemoryChannelStatistics",
    "Lock",
    "StrictFIFOLock",
    "LockStatistics",
    "Condition",
    "ConditionStatistics",
    "Semaphore",
    "SemaphoreStatistics",
    "CapacityLimiter",
    "CapacityLimiterStatistics",
    "Cancelled",
    "TooSlowError",
    "RunFinishedError",
    "WouldBlock",
    "BusyResourceError",
    "ClosedResourceError",
    "BrokenResourceError",
    "EndOfChannel",
    "NurseryInternalError",
    # streams (nursery._abc, nursery._stapled)
    "AsyncResource",
    "SendStream",
    "ReceiveStream",
    "Stream",
    "HalfCloseableStream",
    "Listener",
    "StapledStream",
    "aclose_forcefully",
    # sockets (nursery._highlevel_socket)
    "SocketStream",
    "SocketListener",
    # TCP and Unix connections and servers (nursery._open_tcp_stream,
    # nursery._open_tcp_listeners, nursery._serve_listeners, nursery._unix_sockets)
    "open_tcp_stream",
    "open_tcp_listeners",
    "serve_tcp",
    "serve_listeners",
    "open_unix_socket",
    "open_unix_listener",
    # TLS (nursery._ssl, nursery._ssl_helpers)
    "SSLStream",
    "SSLListener",
    "NeedHandshakeError",
    "open_ssl_over_tcp_stream",
    "open_ssl_over_tcp_listeners",
    "serve_ssl_over_tcp",
    # subprocesses and signals (nursery._subprocess, nursery._signals)
    "run_process",
    "Process",
    "open_signal_receiver",
]

claim_public_names(globals(), "nursery")

# The submodules that are part of the public API, so that
# ``nursery.to_thread.run_sync`` works after a plain ``import nursery``.
from . import from_thread, socket, to_thread  # noqa: E402

# Every run gets an asyncio event loop (nursery.compat's); see _asyncio_bridge.
from ._asyncio_bridge import install_bridge as _install_bridge  # noqa: E402

_install_bridge()
