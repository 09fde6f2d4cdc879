# Seed example 17 (seed line 508, 跨线程调度 (run_coroutine_threadsafe)).
# Complete as in the seed; wrong: nobody runs the new loop, so the coroutine
# never runs and the callback is never called: it prints nothing.

import asyncio
import concurrent.futures

# 定义一个简单的协程
async def my_coroutine():
    print("Running in coroutine")
    await asyncio.sleep(1)
    return "Coroutine Result"

# 定义一个回调函数
def callback(fut):
    print("Callback called with result:", fut.result())

# 在另一个线程中执行协程
def run_coroutine():
    loop = asyncio.new_event_loop()  # 创建一个新的事件循环
    asyncio.set_event_loop(loop)  # 设置当前线程的事件循环
    fut = asyncio.run_coroutine_threadsafe(my_coroutine(), loop)  # 在指定的事件循环中执行协程
    fut.add_done_callback(callback)  # 添加回调函数

# 创建一个线程并启动
with concurrent.futures.ThreadPoolExecutor() as executor:
    executor.submit(run_coroutine)
    # 此处可以继续执行其他任务
