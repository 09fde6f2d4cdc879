# Seed example 12 (seed line 347, 超时控制: timeout_at).
# Completed as 11_timeout. Kept wrong: the seed calls get_running_loop()
# unqualified, so it fails with NameError. 12b is the fixed version.

import asyncio


async def long_running_task():
    await asyncio.sleep(3600)


async def main():
    loop = get_running_loop()
    deadline = loop.time() + 20
    try:
        async with asyncio.timeout_at(deadline):
            await long_running_task()
    except TimeoutError:
        print("The long operation timed out, but we've handled it.")

    print("This statement will run regardless.")


asyncio.run(main())
