"""KernelRun.enqueue_threadsafe: a ready item from another thread takes its
place in the ready queue at once (asyncio's call_soon_threadsafe order)."""

from __future__ import annotations

import threading

import pytest

import nursery
from nursery import lowlevel


class Item:
    def __init__(self, log: list, name: str) -> None:
        self.log = log
        self.name = name
        self._cancelled = False

    def _run(self) -> None:
        self.log.append(self.name)


def test_item_from_thread_runs_before_later_enqueue() -> None:
    async def main() -> list:
        run = lowlevel.current_kernel_run()
        log: list = []
        thread = threading.Thread(target=run.enqueue_threadsafe, args=(Item(log, "from thread"),))
        thread.start()
        thread.join()
        run.enqueue(Item(log, "from the run"))
        await nursery.sleep(0)
        await nursery.sleep(0)
        return log

    assert nursery.run(main) == ["from thread", "from the run"]


def test_wakes_an_idle_run() -> None:
    async def main() -> list:
        run = lowlevel.current_kernel_run()
        log: list = []
        event = nursery.Event()

        class Setter(Item):
            def _run(self) -> None:
                super()._run()
                event.set()

        timer = threading.Timer(0.05, run.enqueue_threadsafe, (Setter(log, "woken"),))
        timer.start()
        with nursery.fail_after(5):
            await event.wait()
        timer.join()
        return log

    assert nursery.run(main) == ["woken"]


def test_seeded_run_goes_through_the_threadsafe_queue() -> None:
    async def main() -> list:
        run = lowlevel.current_kernel_run()
        log: list = []
        thread = threading.Thread(target=run.enqueue_threadsafe, args=(Item(log, "x"),))
        thread.start()
        thread.join()
        for _ in range(3):
            await nursery.sleep(0)
        return log

    assert nursery.run(main, random_seed=1) == ["x"]


def test_finished_run_refuses() -> None:
    async def main() -> lowlevel.KernelRun:
        return lowlevel.current_kernel_run()

    run = nursery.run(main)
    with pytest.raises(nursery.RunFinishedError, match="this run has finished"):
        run.enqueue_threadsafe(Item([], "late"))
