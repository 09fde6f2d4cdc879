# Seed example 21 (seed line 761, Condition).
# Completed: the seed's fragment (top-level await) runs in main(), with
# `import asyncio` and a task that notifies, without which cond.wait() would
# wait for ever.

import asyncio


async def notify_soon(cond, n):
    await asyncio.sleep(0)  # let main() start waiting
    async with cond:
        print("notify", n)
        cond.notify()


async def main():
    cond = asyncio.Condition()
    notifiers = [asyncio.create_task(notify_soon(cond, 1))]

    # ... later
    async with cond:
        await cond.wait()
        print("woken in async with; locked:", cond.locked())

    # 等价于
    notifiers.append(asyncio.create_task(notify_soon(cond, 2)))
    await cond.acquire()
    try:
        await cond.wait()
        print("woken after acquire(); locked:", cond.locked())
    finally:
        cond.release()
    print("locked:", cond.locked())


asyncio.run(main())
