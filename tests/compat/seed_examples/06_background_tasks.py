# Seed example 6 (seed line 183, 创建任务 (create_task)).
# Completed: the seed's fragment is module-level code using an undefined
# some_coro(); it now runs inside main(), with `import asyncio`, a small
# some_coro(), and main() waits for the tasks and prints what is left.

import asyncio

background_tasks = set()


async def some_coro(param):
    await asyncio.sleep(param / 10)
    print("some_coro", param)


async def main():
    for i in range(10):
        task = asyncio.create_task(some_coro(param=i))

        # Add task to the set. This creates a strong reference.
        background_tasks.add(task)

        # To prevent keeping references to finished tasks forever,
        # make each task remove its own reference from the set after
        # completion:
        task.add_done_callback(background_tasks.discard)

    print(len(background_tasks), "tasks in the set")
    await asyncio.gather(*background_tasks)
    print(len(background_tasks), "tasks in the set")


asyncio.run(main())
