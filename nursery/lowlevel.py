"""The kernel's low-level public API: traps, parking lots, task
introspection, instruments, per-run variables and guest runs.

Everything higher up (synchronization primitives, channels, I/O, the asyncio
compatibility layer) is built from these pieces, and so can your own.
"""

from ._core import (
    Abort,
    Callback,
    Clock,
    Instrument,
    KernelRun,
    ParkingLot,
    ParkingLotStatistics,
    RunStatistics,
    RunVar,
    RunVarToken,
    SystemClock,
    Task,
    Token,
    call_soon,
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
    current_clock,
    current_kernel_run,
    current_root_task,
    current_statistics,
    current_task,
    current_token,
    format_task_tree,
    in_run,
    in_task,
    spawn_system_task,
    start_guest_run,
    notify_closing,
    wait_readable,
    wait_task_rescheduled,
    wait_writable,
)
from outcome import Error as _Error, Outcome as _Outcome, Value as _Value

from ._core import current_runner as _current_runner
from ._public import claim_public_names
from ._subprocess import open_process
from ._subprocess_wait import wait_child_exited
from ._unix_pipes import FdStream


def reschedule(task: Task, next_send: _Outcome = _Value(None)) -> None:
    """Wake *task*, which must be blocked in :func:`wait_task_rescheduled`;
    its ``await`` then returns the value of *next_send* (an
    :class:`outcome.Value`) or raises its error (an :class:`outcome.Error`).
    Not a checkpoint."""
    runner = _current_runner("reschedule()")
    if isinstance(next_send, _Value):
        runner.reschedule(task, next_send.value)
    elif isinstance(next_send, _Error):
        runner.reschedule_exc(task, next_send.error)
    else:
        raise TypeError(f"reschedule() needs an outcome.Value or outcome.Error, got {next_send!r}")


def add_instrument(instrument: object) -> None:
    """Install *instrument* in the current run (see :class:`Instrument`)."""
    runner = _current_runner("add_instrument()")
    runner.instruments.add_instrument(instrument)


def remove_instrument(instrument: object) -> None:
    """Remove *instrument* from the current run; :exc:`KeyError` if it is not
    installed."""
    runner = _current_runner("remove_instrument()")
    runner.instruments.remove_instrument(instrument)


__all__ = [
    "Abort",
    "Callback",
    "Clock",
    "FdStream",
    "Instrument",
    "KernelRun",
    "ParkingLot",
    "ParkingLotStatistics",
    "RunStatistics",
    "RunVar",
    "RunVarToken",
    "SystemClock",
    "Task",
    "Token",
    "add_instrument",
    "call_soon",
    "cancel_shielded_checkpoint",
    "checkpoint",
    "checkpoint_if_cancelled",
    "current_clock",
    "current_kernel_run",
    "current_root_task",
    "current_statistics",
    "current_task",
    "current_token",
    "format_task_tree",
    "in_run",
    "in_task",
    "remove_instrument",
    "reschedule",
    "spawn_system_task",
    "start_guest_run",
    "notify_closing",
    "open_process",
    "wait_child_exited",
    "wait_readable",
    "wait_task_rescheduled",
    "wait_writable",
]

claim_public_names(globals(), "nursery.lowlevel")
