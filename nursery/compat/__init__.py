"""asyncio on the nursery kernel.

``from nursery import compat as asyncio`` gives the asyncio API, mapped onto
the kernel; :class:`EventLoop` runs stock asyncio code and libraries on it.
"""

from ._loop import EventLoop, new_event_loop
from ._task import Task

__all__ = ["EventLoop", "Task", "new_event_loop"]

from .._public import claim_public_names  # noqa: E402

claim_public_names(globals(), "nursery.compat")
