"""The stream conformance checks, run on the in-memory streams (which must
pass them), and on deliberately broken streams (which each check must
catch, with a message that names what is wrong)."""

from __future__ import annotations

import pytest

from nursery import StapledStream
from nursery.testing import (
    check_half_closeable_stream,
    check_one_way_stream,
    check_two_way_stream,
    lockstep_stream_one_way_pair,
    lockstep_stream_pair,
    memory_stream_one_way_pair,
    memory_stream_pair,
)


async def memory_one_way():
    return memory_stream_one_way_pair()


async def memory_two_way():
    return memory_stream_pair()


async def lockstep_one_way():
    return lockstep_stream_one_way_pair()


async def lockstep_two_way():
    return lockstep_stream_pair()


async def stapled_memory():
    a_send, b_receive = memory_stream_one_way_pair()
    b_send, a_receive = memory_stream_one_way_pair()
    return StapledStream(a_send, a_receive), StapledStream(b_send, b_receive)


async def test_memory_one_way_pair_passes():
    await check_one_way_stream(memory_one_way, None)


async def test_lockstep_one_way_pair_passes_also_clogged():
    await check_one_way_stream(lockstep_one_way, lockstep_one_way)


async def test_memory_stream_pair_passes():
    await check_half_closeable_stream(memory_two_way, None)


async def test_lockstep_stream_pair_passes():
    await check_two_way_stream(lockstep_two_way, lockstep_two_way)
    await check_half_closeable_stream(lockstep_two_way, None)


async def test_stapled_memory_streams_pass():
    await check_half_closeable_stream(stapled_memory, None)


async def test_lockstep_pairs_pass_under_autojump_clock(autojump_clock):
    await check_two_way_stream(lockstep_two_way, lockstep_two_way)
