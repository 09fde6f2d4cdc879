"""A readable dump of the live task tree, for debugging hangs."""

from __future__ import annotations

import os
import sys
from typing import Any

from ._state import current_runner

__all__ = ["format_task_tree"]


_KERNEL_DIR = os.path.dirname(os.path.abspath(__file__))


def _running_frames(task: Any) -> list[tuple[Any, int]]:
    # A running task is not suspended in an await, so its coroutine chain
    # stops at the outermost frame; the live call stack, from the task's
    # coroutine down to this function's caller, says where it really is.
    target = getattr(task.coro, "cr_frame", None)
    stack = []
    frame = sys._getframe()
    while frame is not None and frame is not target:
        stack.append(frame)
        frame = frame.f_back
    if frame is None:
        return list(task.iter_await_frames())
    stack.append(frame)
    return [(f, f.f_lineno) for f in reversed(stack)]


def _where(task: Any, running: bool = False) -> str:
    # The innermost frame outside the kernel is where the user's code
    # awaits; the kernel frame below it says what it is waiting in.
    frames = _running_frames(task) if running else list(task.iter_await_frames())
    if not frames:
        return "finished"
    user = [f for f in frames if os.path.dirname(os.path.abspath(f[0].f_code.co_filename)) != _KERNEL_DIR]
    # A task whose function is itself a kernel one (start_soon(sleep, 5)):
    # name that function, not the innermost trap.
    frame, lineno = user[-1] if user else frames[0]
    code = frame.f_code
    text = f"{code.co_name} at {os.path.basename(code.co_filename)}:{lineno}"
    inner = frames[frames.index((frame, lineno)) + 1 :]
    if inner:
        text += f" (in {inner[0][0].f_code.co_name})"
    return text


def _state(task: Any, runner: Any) -> str:
    if task is runner.current_task:
        return "running"
    if task._abort_func is not None:
        return "blocked"
    return "ready"


def _scope_note(scope: Any) -> str:
    bits = []
    if scope._cancel_called:
        bits.append("cancelled")
    if scope._shield:
        bits.append("shielded")
    if scope._deadline != float("inf"):
        bits.append(f"deadline={scope._deadline:.3f}")
    return f" [{', '.join(bits)}]" if bits else ""


def format_task_tree(root: Any = None) -> str:
    """Return the live task tree of the current run as text: each task with
    its state and the place it is suspended at, each nursery with its scope's
    state, indented by nesting. ``root`` defaults to the run's root task."""
    runner = current_runner("format_task_tree()")
    if root is None:
        root = runner.init_task
    lines: list[str] = []

    def walk_task(task: Any, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└── " if last else "├── ")
        lines.append(f"{prefix}{branch}task {task.name!r} ({_state(task, runner)}): {_where(task, task is runner.current_task)}")
        child_prefix = prefix if top else prefix + ("    " if last else "│   ")
        nurseries = list(task._child_nurseries)
        for i, nursery in enumerate(nurseries):
            walk_nursery(nursery, child_prefix, i == len(nurseries) - 1)

    def walk_nursery(nursery: Any, prefix: str, last: bool) -> None:
        branch = "└── " if last else "├── "
        lines.append(f"{prefix}{branch}nursery{_scope_note(nursery._cancel_scope)}")
        child_prefix = prefix + ("    " if last else "│   ")
        children = list(nursery._children)
        for i, child in enumerate(children):
            walk_task(child, child_prefix, i == len(children) - 1, False)

    walk_task(root, "", True, True)
    return "\n".join(lines)
