"""``asyncio.Task(coro, loop=...)`` on compat's loops.

Most code starts tasks with ``loop.create_task()`` or
``asyncio.create_task()``, which on a compat loop make a
:class:`nursery.compat.Task`, a kernel task. Some code calls the class
itself: aiohttp's server does, for every request, from Python 3.12
(``asyncio.Task(coro, loop=loop, eager_start=True)``). On a compat loop that
would make stock asyncio's C Task: a task the kernel does not know, inside
which nursery code (nurseries, cancel scopes, channels) cannot run.

So the first compat loop made in a process puts :class:`AsyncioTask` in the
``asyncio`` module's ``Task``. Called with a compat loop (the ``loop=``
given, or the running loop if none is given) it makes a compat Task;
called with any other loop it makes stock's Task, exactly as before (the
object is of stock's class, not this one). ``isinstance(x, asyncio.Task)``
is true for both kinds, and a class that subclasses ``asyncio.Task`` gets
stock's Task, as it always did. ``asyncio.tasks.Task``, which stock's own
loops use in ``create_task``, is left as it is.
"""

from __future__ import annotations

import asyncio
from asyncio import events
from typing import Any

from ._task import Task

__all__ = ["AsyncioTask", "install_asyncio_task"]


class _TaskClassType(type):
    # Only AsyncioTask itself dispatches and answers for both task kinds;
    # a class derived from it is an ordinary subclass of stock's Task.

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls is not AsyncioTask:
            return super().__call__(*args, **kwargs)
        loop = kwargs.get("loop")
        if loop is None:
            loop = events._get_running_loop()
        # (A compat loop, and no other, has a kernel run; an isinstance test
        # would make this module and _loop import each other.)
        if getattr(loop, "_kernel_run", None) is not None:
            kwargs["loop"] = loop  # (found already: Task need not look again)
            task = Task(*args, **kwargs)
            if task._source_traceback:
                del task._source_traceback[-1]  # this frame (debug mode)
            return task
        return _stock_task(*args, **kwargs)

    def __instancecheck__(cls, instance: Any) -> bool:
        if cls is AsyncioTask:
            return isinstance(instance, _task_classes)
        return type.__instancecheck__(cls, instance)

    def __subclasscheck__(cls, subclass: type) -> bool:
        if cls is AsyncioTask:
            return issubclass(subclass, _task_classes)
        return type.__subclasscheck__(cls, subclass)


# The class found in asyncio.Task at import (stock's C Task, unless
# something else was put there first).
_stock_task: Any = asyncio.Task
_task_classes = (_stock_task, Task)


class AsyncioTask(_stock_task, metaclass=_TaskClassType):  # type: ignore[misc,valid-type]
    """What ``asyncio.Task`` is once a compat loop exists: calling it makes
    a :class:`nursery.compat.Task` on a compat loop and stock asyncio's Task
    on any other; both kinds are instances of it."""

    __slots__ = ()


AsyncioTask.__name__ = AsyncioTask.__qualname__ = "Task"


def install_asyncio_task() -> None:
    """Put :class:`AsyncioTask` in ``asyncio.Task`` (once per process; every
    compat loop calls this when it is made)."""
    if asyncio.Task is _stock_task:
        asyncio.Task = AsyncioTask  # type: ignore[misc]
