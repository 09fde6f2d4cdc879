# Seed example 8 (seed line 224, 休眠 (sleep)).
# Complete as in the seed. It prints the wall-clock date; the test
# normalises it.

import asyncio
import datetime

async def display_date():
    loop = asyncio.get_running_loop()
    end_time = loop.time() + 5.0
    while True:
        print(datetime.datetime.now())
        if (loop.time() + 1.0) >= end_time:
            break
        await asyncio.sleep(1)

asyncio.run(display_date())
