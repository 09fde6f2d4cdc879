"""asyncio on the nursery kernel.

``from nursery import compat as asyncio`` gives the asyncio API, mapped onto
the kernel; :class:`EventLoop` runs stock asyncio code and libraries on it.
"""

from ._exceptions import *  # noqa: F403
from ._exceptions import __all__ as _exceptions_all
from ._locks import Barrier, BoundedSemaphore, Condition, Event, Lock, Semaphore
from ._loop import EventLoop, new_event_loop
from ._policy import (
    EventLoopPolicy,
    all_tasks,
    create_task,
    current_task,
    ensure_future,
    get_event_loop,
    get_running_loop,
    install,
    iscoroutine,
    run_coroutine_threadsafe,
    set_event_loop,
    to_thread,
)
from ._runners import Runner, run
from ._queues import LifoQueue, PriorityQueue, Queue
from ._task import Task
from ._as_completed import as_completed
from ._gather import gather
from ._shield import shield
from ._sleep import sleep
from ._streams import *  # noqa: F403
from ._streams import __all__ as _streams_all
from ._subprocess import create_subprocess_exec, create_subprocess_shell
from . import subprocess  # asyncio.subprocess.PIPE, ...
from ._taskgroup import TaskGroup
from ._timeouts import Timeout, timeout, timeout_at
from ._wait import ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION, wait
from ._wait_for import wait_for

__all__ = ["EventLoop", "Task", "new_event_loop"]
__all__ += [
    "EventLoopPolicy",
    "Runner",
    "all_tasks",
    "create_task",
    "current_task",
    "ensure_future",
    "get_event_loop",
    "get_running_loop",
    "install",
    "iscoroutine",
    "run",
    "run_coroutine_threadsafe",
    "set_event_loop",
    "to_thread",
]
__all__ += ["Barrier", "BoundedSemaphore", "Condition", "Event", "Lock", "Semaphore"]
__all__ += ["LifoQueue", "PriorityQueue", "Queue"]
__all__ += _exceptions_all
__all__ += ["ALL_COMPLETED", "FIRST_COMPLETED", "FIRST_EXCEPTION", "TaskGroup", "Timeout", "as_completed", "gather"]
__all__ += ["shield", "sleep", "timeout", "timeout_at", "wait", "wait_for"]
__all__ += _streams_all
__all__ += ["create_subprocess_exec", "create_subprocess_shell"]

from .._public import claim_public_names  # noqa: E402

claim_public_names(globals(), "nursery.compat")
