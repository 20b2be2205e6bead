"""JudgeSlots, the cluster-wide judge semaphore of the Ray engine, as plain asyncio (the actor's own code):
a lost worker's leases are given back, and no holder can give back more than it holds."""

from __future__ import annotations

import asyncio

from grader.pipeline.ray_engine import JudgeSlots


def test_a_dead_holders_slots_come_back_and_the_limit_holds() -> None:
    async def scenario() -> tuple[dict[str, int], bool, dict[str, int]]:
        slots = JudgeSlots(2)
        await slots.acquire("w1")
        await slots.acquire("w1")
        waiting = asyncio.create_task(slots.acquire("w2"))
        await asyncio.sleep(0.05)
        blocked = not waiting.done()  # two slots out: a third caller waits
        slots.release("w2")  # w2 holds nothing: giving back what it does not hold must not open a slot
        await asyncio.sleep(0.05)
        blocked = blocked and not waiting.done()
        full = slots.stats()
        assert slots.release_all("w1") == 2  # w1 died holding two
        await asyncio.wait_for(waiting, 1)
        return full, blocked, slots.stats()

    full, blocked, after = asyncio.run(scenario())
    assert blocked
    assert full == {"limit": 2, "in_use": 2, "peak": 2}
    assert after == {"limit": 2, "in_use": 1, "peak": 2}
