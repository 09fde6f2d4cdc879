# Seed example 19 (seed line 665, lock).
# Completed: the seed's fragment (top-level await, comment-only blocks)
# runs in main(); the blocks append to a list; `import asyncio` added.

import asyncio


async def main():
    lock = asyncio.Lock()
    shared = []

    # ... later
    async with lock:
        # access shared state
        shared.append(("async with", lock.locked()))

    # 等价于
    await lock.acquire()
    try:
        # access shared state
        shared.append(("acquire/release", lock.locked()))
    finally:
        lock.release()
    print(shared, lock.locked())


asyncio.run(main())
