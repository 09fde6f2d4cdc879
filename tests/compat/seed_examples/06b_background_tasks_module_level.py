# Seed example 6 (seed line 183, 创建任务 (create_task)), run as the seed
# writes it: module-level code, with only `import asyncio` and some_coro()
# added. Wrong: create_task() outside a running loop raises RuntimeError (and
# the coroutine made for it is never awaited).

import asyncio


async def some_coro(param):
    await asyncio.sleep(param / 10)
    print("some_coro", param)


background_tasks = set()

for i in range(10):
    task = asyncio.create_task(some_coro(param=i))

    # Add task to the set. This creates a strong reference.
    background_tasks.add(task)

    # To prevent keeping references to finished tasks forever,
    # make each task remove its own reference from the set after
    # completion:
    task.add_done_callback(background_tasks.discard)
