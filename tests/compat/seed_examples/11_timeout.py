# Seed example 11 (seed line 316, 超时控制: timeout).
# Completed: `import asyncio`, a long_running_task() (an hour's sleep) and
# the asyncio.run(main()) call.

import asyncio


async def long_running_task():
    await asyncio.sleep(3600)


async def main():
    try:
        async with asyncio.timeout(10):
            await long_running_task()
    except TimeoutError:
        print("The long operation timed out, but we've handled it.")

    print("This statement will run regardless.")


asyncio.run(main())
