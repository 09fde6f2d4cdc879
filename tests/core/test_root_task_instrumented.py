"""Instruments see the run's root task like every other task."""

from __future__ import annotations

import nursery
from nursery import lowlevel


class Recorder(lowlevel.Instrument):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.live = 0

    def task_spawned(self, task) -> None:
        self.live += 1
        self.events.append(("spawned", task.name))

    def task_scheduled(self, task) -> None:
        self.events.append(("scheduled", task.name))

    def task_exited(self, task) -> None:
        self.live -= 1
        self.events.append(("exited", task.name))


def test_root_task_is_spawned_and_scheduled_for_instruments() -> None:
    async def main() -> None:
        assert recorder.live == 2  # the root task and this one

    recorder = Recorder()
    nursery.run(main, instruments=[recorder])
    names = [name for _, name in recorder.events]
    main_name = names[2]
    assert main_name.endswith("main")
    assert recorder.events == [
        ("spawned", "<init>"),
        ("scheduled", "<init>"),
        ("spawned", main_name),
        ("scheduled", main_name),
        ("exited", main_name),
        ("scheduled", "<init>"),
        ("exited", "<init>"),
    ]
    assert recorder.live == 0
