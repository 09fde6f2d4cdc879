"""Calling into a nursery run from another thread: from the worker threads
of :func:`nursery.to_thread.run_sync`, or from any thread given the run's
:class:`~nursery.lowlevel.Token`. See the threads guide."""

from ._public import claim_public_names
from ._threads import (
    from_thread_check_cancelled as check_cancelled,
    from_thread_run as run,
    from_thread_run_sync as run_sync,
)

__all__ = ["run", "run_sync", "check_cancelled"]

claim_public_names(globals(), "nursery.from_thread")
