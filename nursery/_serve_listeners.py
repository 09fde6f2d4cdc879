"""``serve_listeners``: the accept loop every server needs, one task per
connection."""

from __future__ import annotations

import errno
import logging
import os
from typing import Any, Awaitable, Callable, Sequence, TypeVar

from ._abc import AsyncResource, Listener, aclose_forcefully
from ._core import TASK_STATUS_IGNORED, TaskStatus, open_nursery, sleep

__all__ = ["serve_listeners"]

R = TypeVar("R", bound=AsyncResource)

# accept() errors that mean the process or the system is out of a resource
# (descriptors, kernel memory) for now. Crashing the server would turn a
# passing overload into an outage; the connections wait in the listen queue
# meanwhile, so pausing and retrying serves them once handlers finish and
# free their descriptors.
_OUT_OF_RESOURCES_ERRNOS = frozenset(
    getattr(errno, name) for name in ("EMFILE", "ENFILE", "ENOMEM", "ENOBUFS") if hasattr(errno, name)
)

#: Seconds to pause before accepting again after running out of resources.
RETRY_DELAY = 0.1

LOGGER = logging.getLogger("nursery.serve_listeners")


def check_handler(handler: Any, fn_name: str) -> TypeError | None:
    """The error for a *handler* that cannot be a connection handler, or
    None."""
    if callable(handler):
        return None
    return TypeError(f"{fn_name} handler must be an async function taking the stream, got {handler!r}")


async def _handle(handler: Callable[[R], Awaitable[object]], stream: R) -> None:
    try:
        await handler(stream)
    finally:
        # The handler may have closed it (a no-op then); if not, close it
        # without a graceful goodbye, which a crashed handler cannot give.
        await aclose_forcefully(stream)


async def _accept_loop(listener: Listener[R], handler: Callable[[R], Awaitable[object]], handler_nursery: Any) -> None:
    async with listener:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in _OUT_OF_RESOURCES_ERRNOS:
                    raise
                LOGGER.error(
                    "accept() on %r failed with %s (%s); retrying in %s seconds",
                    listener,
                    errno.errorcode.get(exc.errno, exc.errno),
                    os.strerror(exc.errno),
                    RETRY_DELAY,
                    exc_info=True,
                )
                await sleep(RETRY_DELAY)
            else:
                handler_nursery.start_soon(_handle, handler, stream)


async def serve_listeners(
    handler: Callable[[R], Awaitable[object]],
    listeners: Sequence[Listener[R]],
    *,
    handler_nursery: Any = None,
    task_status: TaskStatus[Sequence[Listener[R]]] = TASK_STATUS_IGNORED,
) -> None:
    """Accept connections on every listener in *listeners*, and run
    ``await handler(stream)`` in a new task for each one. Runs until
    cancelled (or until a listener or a handler fails).

    Use it with :meth:`Nursery.start <nursery.Nursery.start>`: once every
    accept loop is running, ``task_status.started(listeners)`` reports the
    listeners, so ``await nursery.start(serve_listeners, handler, listeners)``
    returns when the server is accepting.

    The handler tasks run in *handler_nursery* (any object with a
    ``start_soon`` method) when given, otherwise in a nursery of
    ``serve_listeners``' own. The stream is closed with
    :func:`~nursery.aclose_forcefully` when the handler returns or raises, so
    a handler need not close it (closing it itself, gracefully, is fine).

    ``serve_listeners`` owns the listeners: they are closed when it exits.

    Errors: an exception from a handler is not caught; it propagates out of
    the handler nursery and, with the default one, stops the server. Catch
    errors in the handler if one connection should not take the others
    down. :exc:`OSError` from ``accept()`` stops the server too, except
    ``EMFILE``, ``ENFILE``, ``ENOMEM`` and ``ENOBUFS`` (out of descriptors or
    kernel memory): those are logged at ERROR level to the
    ``nursery.serve_listeners`` logger, and accepting resumes after 0.1
    seconds, when finished handlers may have freed what was missing.

    Raises :exc:`TypeError` if *handler* is not callable or a listener is not
    a :class:`~nursery.Listener`, :exc:`ValueError` if *listeners* is empty
    (there would be nothing to serve); the listeners given are closed
    first, since they were handed over.
    """
    listeners = list(listeners)
    problem = check_handler(handler, "serve_listeners()")
    if problem is None and not listeners:
        problem = ValueError("serve_listeners() needs at least one listener, got none")
    for listener in listeners:
        if problem is None and not isinstance(listener, Listener):
            problem = TypeError(f"serve_listeners() listeners must be nursery.Listener objects, got {listener!r}")
    if problem is not None:
        # The listeners were handed over: close them rather than leak them.
        for listener in listeners:
            if isinstance(listener, Listener):
                await aclose_forcefully(listener)
        raise problem
    async with open_nursery() as own_nursery:
        if handler_nursery is None:
            handler_nursery = own_nursery
        for listener in listeners:
            own_nursery.start_soon(_accept_loop, listener, handler, handler_nursery)
        task_status.started(listeners)
