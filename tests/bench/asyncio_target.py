"""Targets for asyncio_bench.py.

`block`: a healthy loop that, after a second, blocks in time.sleep and prints the wall time
it started blocking. `tasks N`: N parked tasks on one loop. `trio_tasks N`: N parked tasks
in one trio nursery (each waiting on one `trio.Event`; the
nursery's parent in `trio.sleep(3600)`).
"""
import asyncio
import sys
import time


async def block():
    await asyncio.sleep(1.0)
    print("BLOCK", time.time(), flush=True)
    time.sleep(3600)


async def parked(ev):
    await ev.wait()


async def tasks(n):
    ev = asyncio.Event()
    ts = [asyncio.ensure_future(parked(ev)) for _ in range(n)]
    await asyncio.sleep(0.5)
    print("READY", len(ts), flush=True)
    await ev.wait()


async def trio_tasks(n):
    import trio

    ev = trio.Event()
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(ev.wait)
        await trio.sleep(0.5)
        print("READY", n, flush=True)
        # Under a deadline, so the run is not a stall (every task parked for good would be
        # one, a finding asyncio's bench target does not have).
        await trio.sleep(3600)


if sys.argv[1] == "block":
    asyncio.run(block())
elif sys.argv[1] == "trio_tasks":
    import trio

    trio.run(trio_tasks, int(sys.argv[2]))
else:
    asyncio.run(tasks(int(sys.argv[2])))
