# Seed example 10 (seed line 299, 协程保护 (shield)).
# Completed: the seed's fragment (top-level await, undefined something(),
# shield and CancelledError used unqualified) runs in fragment(), with the
# names imported from asyncio; main() cancels fragment() while it waits, to
# show the shielded task carrying on.

import asyncio
from asyncio import CancelledError, shield


async def something():
    await asyncio.sleep(1)
    print("something() finished")
    return 42


async def fragment():
    task = asyncio.create_task(something())
    try:
        res = await shield(task)
    except CancelledError:
        res = None
    print("res =", res)
    return task


async def main():
    outer = asyncio.create_task(fragment())
    await asyncio.sleep(0.5)
    outer.cancel()
    task = await outer
    print("shielded task result:", await task)


asyncio.run(main())
