# Seed example 3 (seed line 101, 协程 (coroutines)).
# Kept wrong: the seed pasted the program's output (hello, world) into the
# code, so after printing it the program fails with NameError: name 'hello'.

import asyncio

async def main():
    print('hello')
    await asyncio.sleep(1)
    print('world')

asyncio.run(main())
hello
world
