import pytest

import nursery


async def test_sleep_with_autojump(autojump_clock):
    start = nursery.current_time()
    await nursery.sleep(3600)
    assert nursery.current_time() - start == 3600


@pytest.fixture
async def open_n():
    async with nursery.open_nursery() as n:
        yield n
        n.cancel_scope.cancel()


async def test_async_fixture_nursery(open_n, autojump_clock):
    done = []

    async def child():
        await nursery.sleep(1)
        done.append(1)

    open_n.start_soon(child)
    await nursery.sleep(2)
    assert done == [1]
