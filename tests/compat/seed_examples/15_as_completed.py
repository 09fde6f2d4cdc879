# Seed example 15 (seed line 434, 简单等待 (as_completed)).
# Complete as in the seed; wrong: loop.close() inside the running loop raises
# RuntimeError.

import asyncio

async def task1():
    await asyncio.sleep(1)
    return "Task 1"

async def task2():
    await asyncio.sleep(2)
    return "Task 2"

async def main():
    # 创建一个事件循环
    loop = asyncio.get_event_loop()

    # 定义要等待的协程任务列表
    tasks = [task1(), task2()]

    # 使用 asyncio.as_completed 迭代任务的完成顺序
    for coro in asyncio.as_completed(tasks):
        result = await coro
        print("Completed task:", result)

    # 关闭事件循环
    loop.close()

# 运行主协程
asyncio.run(main())
