# Seed example 1 (seed line 64, asyncio.run), with its missing parenthesis
# and import added.

import asyncio

async def main():
    await asyncio.sleep(1)
    print('hello')

asyncio.run(main())
