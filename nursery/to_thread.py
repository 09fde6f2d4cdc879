"""Running blocking code in a worker thread without blocking the run:
``await nursery.to_thread.run_sync(fn, *args)``. See the threads guide."""

from ._public import claim_public_names
from ._threads import current_default_thread_limiter, to_thread_run_sync as run_sync

__all__ = ["run_sync", "current_default_thread_limiter"]

claim_public_names(globals(), "nursery.to_thread")
