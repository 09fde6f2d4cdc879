# Seed example 22 (seed line 794, Semaphore).
# Completed: the seed's fragment (top-level await, comment-only blocks)
# runs in main(); `import asyncio` added.

import asyncio


async def main():
    sem = asyncio.Semaphore(10)
    used = []

    # ... later
    async with sem:
        # work with shared resource
        used.append(("async with", sem.locked()))

    # 等价于
    # ... later
    await sem.acquire()
    try:
        # work with shared resource
        used.append(("acquire/release", sem.locked()))
    finally:
        sem.release()
    print(used, sem.locked())


asyncio.run(main())
