"""A consumer process for the kill tests: python consumer_proc.py BOOTSTRAP REDIS GROUP COUNTER MODE.

Its handler increments COUNTER in Redis together with the event's idempotency key
(one transaction) for events of its own group's marker. MODE ``crash-after-effect``
SIGKILLs the process right after that transaction (before the offset commit);
``crash-before-effect`` SIGKILLs it before; ``normal`` runs until SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from creatormesh.common import logs, topics
from creatormesh.common.bus import Event, EventBus, run_consumer
from creatormesh.common.redis_pool import redis_client
from creatormesh.common.settings import KitSettings


async def main(bootstrap: str, redis_url: str, group: str, counter: str, mode: str) -> None:
    marker = group.removeprefix("g-")
    bus = EventBus.from_settings(KitSettings(kafka_bootstrap=bootstrap, redis_url=redis_url), "consumer-proc")
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    async def handler(event: Event) -> None:
        if not event.payload.message.startswith(marker):
            return
        if mode == "crash-before-effect":
            os.kill(os.getpid(), signal.SIGKILL)
        pipe = redis_client(redis_url).pipeline(transaction=True)
        pipe.incr(counter)
        event.mark_applied_in(pipe)
        await pipe.execute()
        if mode == "crash-after-effect":
            os.kill(os.getpid(), signal.SIGKILL)

    await run_consumer(bus, group, {topics.SELFCHECK: handler}, stop)
    await bus.close()


if __name__ == "__main__":
    logs.configure("consumer-proc", "INFO", "text")
    asyncio.run(main(*sys.argv[1:6]))
