"""Which shards a search asks: one that keeps giving no answer is left out of the fan-out until
its health check says it serves again (outlier ejection, as a service mesh does it)."""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from common.errors import VisualSearchError
from gateway import metrics

log = logging.getLogger(__name__)

# Asks a shard's health service whether it serves, within a timeout in seconds.
Probe = Callable[[str, float], Awaitable[bool]]


class ShardHealth:
    """Counts each shard's searches without an answer in a row; past `eject_after`, the shard
    is out until a probe, every `probe_s`, finds it SERVING."""

    def __init__(self, probe: Probe, eject_after: int, probe_s: float) -> None:
        self._probe = probe
        self._eject_after = eject_after
        self._probe_s = probe_s
        self._failures: dict[str, int] = {}
        self._out: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._probing())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    @property
    def out(self) -> frozenset[str]:
        return frozenset(self._out)

    def order(self, replicas: Sequence[str], turn: int) -> list[str]:
        """The replicas to ask in turn, starting from number `turn`, those left out dropped."""
        n = len(replicas)
        rotated = [replicas[(turn + i) % n] for i in range(n)]
        return [shard for shard in rotated if shard not in self._out]

    def answered(self, shard: str) -> None:
        self._failures.pop(shard, None)

    def failed(self, shard: str) -> None:
        """A search the shard gave no answer to; the `eject_after`th in a row leaves it out."""
        self._failures[shard] = self._failures.get(shard, 0) + 1
        if self._failures[shard] >= self._eject_after and shard not in self._out:
            self._out.add(shard)
            metrics.EJECTED.set(len(self._out))
            log.warning(
                "shard %s left out of searches after %d without an answer; probing its health",
                shard,
                self._failures[shard],
            )

    async def _probing(self) -> None:
        while True:
            await asyncio.sleep(self._probe_s)
            for shard in sorted(self._out):
                if await self._serving(shard):
                    self._out.discard(shard)
                    self._failures.pop(shard, None)
                    metrics.EJECTED.set(len(self._out))
                    log.info("shard %s serves again; back in searches", shard)

    async def _serving(self, shard: str) -> bool:
        try:
            return await self._probe(shard, self._probe_s)
        except VisualSearchError:
            return False
