# Seed example 2 (seed line 74, asyncio.Runner).
# Completed: `import asyncio` added.

import asyncio

async def main():
    await asyncio.sleep(1)
    print('hello')

with asyncio.Runner() as runner:
    runner.run(main())
