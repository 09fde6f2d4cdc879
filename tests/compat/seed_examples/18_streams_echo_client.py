# Seed example 18 (seed line 626, 流 (streams)).
# Complete as in the seed; it expects an echo server on 127.0.0.1:8888. With
# none there, it fails with ConnectionRefusedError.

import asyncio

async def tcp_echo_client(message):
    reader, writer = await asyncio.open_connection(
        '127.0.0.1', 8888)

    print(f'Send: {message!r}')
    writer.write(message.encode())
    await writer.drain()

    data = await reader.read(100)
    print(f'Received: {data.decode()!r}')

    print('Close the connection')
    writer.close()
    await writer.wait_closed()

asyncio.run(tcp_echo_client('Hello World!'))
