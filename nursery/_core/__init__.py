"""The kernel: the run loop, tasks, cancel scopes, nurseries and the traps.

Private: the public surface is re-exported by ``nursery``, ``nursery.lowlevel``
and ``nursery.testing``. Nothing here imports from the rest of the package.
"""

from ._cancel_scope import CancelScope
from ._clock import Clock, SystemClock
from ._exceptions import (
    BrokenResourceError,
    BusyResourceError,
    Cancelled,
    ClosedResourceError,
    EndOfChannel,
    NurseryInternalError,
    RunFinishedError,
    TooSlowError,
    WouldBlock,
)
from ._guest import start_guest_run
from ._instruments import Instrument
from ._kernel_run import KernelRun, current_kernel_run
from ._io_common import notify_closing, wait_readable, wait_writable
from ._mock_clock import MockClock
from ._nursery import TASK_STATUS_IGNORED, Nursery, NurseryManager, TaskStatus, open_nursery
from ._parking_lot import ParkingLot, ParkingLotStatistics
from ._run import (
    Callback,
    call_soon,
    current_clock,
    current_root_task,
    current_task,
    current_time,
    in_run,
    in_task,
    run,
    spawn_system_task,
    wait_all_tasks_blocked,
)
from ._run_var import RunVar, RunVarToken
from ._sleep import sleep, sleep_forever, sleep_until
from ._state import STATE, current_runner, no_run_error
from ._statistics import RunStatistics, current_statistics
from ._task import Task
from ._task_tree import format_task_tree
from ._time_values import check_time
from ._token import Token, current_token
from ._traps import (
    Abort,
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
    wait_task_rescheduled,
)
