# Seed example 7 (seed line 207, TaskGroup).
# Completed: `import asyncio`, some_coro() and another_coro() (the seed passes
# them `...`), and the asyncio.run(main()) call.

import asyncio


async def some_coro(arg):
    await asyncio.sleep(1)
    print("some_coro got", arg)


async def another_coro(arg):
    await asyncio.sleep(2)
    print("another_coro got", arg)


async def main():
    async with asyncio.TaskGroup() as tg:
        task1 = tg.create_task(some_coro(...))
        task2 = tg.create_task(another_coro(...))
    print("Both tasks have completed now.")


asyncio.run(main())
