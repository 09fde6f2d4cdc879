# Seed example 1 (seed line 64, asyncio.run).
# Completed: the seed's snippet has no import; `import asyncio` added.
# Kept wrong: `asyncio.run(main()` misses its closing parenthesis, so every
# way of running it stops with the same SyntaxError. 01b is the fixed version.

import asyncio

async def main():
    await asyncio.sleep(1)
    print('hello')

asyncio.run(main()
