# Seed example 14 (seed line 394, 简单等待 (wait)).
# Complete as in the seed, and wrong twice: since 3.11 asyncio.wait() refuses
# coroutines (TypeError), and loop.close() inside the running loop would raise
# RuntimeError.

import asyncio

async def task1():
    await asyncio.sleep(1)
    print("Task 1 completed")

async def task2():
    await asyncio.sleep(2)
    print("Task 2 completed")

async def main():
    # 创建一个事件循环
    loop = asyncio.get_event_loop()

    # 定义要等待的协程任务列表
    tasks = [task1(), task2()]

    # 使用 asyncio.wait 等待任务完成
    done, pending = await asyncio.wait(tasks, timeout=3)

    # 打印已完成的任务
    for task in done:
        print("Completed task:", task)

    # 取消未完成的任务
    for task in pending:
        task.cancel()

    # 关闭事件循环
    loop.close()

# 运行主协程
asyncio.run(main())
