"""Keeps a shard a projection of the record: build from a scan, then follow the feed.

At start the shard takes its newest snapshot that passes its checks (else nothing), asks the
feed for what came after it, and rebuilds from a scan when there is no snapshot or the feed
no longer keeps that position. While following it applies the feed in batches, fetches from
the record the vectors of items moved into its partitions from elsewhere, snapshots every
`snapshot_every` entries, and wakes callers waiting to see a position (`wait_for`).
"""

import asyncio
import logging
import time
from collections.abc import Sequence

from common.errors import FailedPrecondition, Unavailable, VisualSearchError
from common.feed import DELETE, ROUTE, SPLIT, Change, ItemState, Route
from common.routing import Routes, partition_map
from index_svc.partition import Partition
from index_svc.record_client import RecordClient, TreeState
from index_svc.shard import Shard
from index_svc.snapshots import Loaded, Snapshots

log = logging.getLogger(__name__)

RETRY_S = 1.0  # wait before following again after the taxonomy failed
BATCH = 2000  # feed entries applied at once
DRAIN_CHECK_S = 1.0  # how often a quiet feed still looks for partitions to drop
MAINTAIN_S = 1.0  # how often partitions are checked for a rebuild
_REBUILD = object()  # put on the queue when the feed says: rebuild from a scan


class Assignment:
    """Which partitions a shard keeps: those the routes give its address (serving or building
    them), and those it is draining after a move away, for `grace_s` so that gateways that
    have not yet heard of the move still find them."""

    def __init__(self, address: str, routes: Routes, grace_s: float) -> None:
        self.address = address
        self.routes = routes
        self.grace_s = grace_s
        self._draining: dict[str, float] = {}  # partition -> when to drop it

    def __call__(self, partition: str) -> bool:
        return self.address in self.routes.holders(partition) or partition in self._draining

    def update(self, route: Route) -> tuple[bool, bool]:
        """Takes a partition's new route; returns (gained it, lost it)."""
        name = str(route.partition_id)
        before = self.address in self.routes.holders(name)
        self.routes.update(route)
        after = self.address in self.routes.holders(name)
        if after:
            self._draining.pop(name, None)
        elif before:
            self._draining[name] = time.monotonic() + self.grace_s
        return after and not before, before and not after

    def due(self) -> list[str]:
        """The drained partitions whose grace is over (forgotten here: drop them)."""
        now = time.monotonic()
        due = [name for name, when in self._draining.items() if when <= now]
        for name in due:
            del self._draining[name]
        return due

    def building(self) -> list[int]:
        """The partitions this shard is a target of and has not reported ready."""
        return [
            route.partition_id
            for route in self.routes.rows.values()
            if self.address in route.target and self.address not in route.ready
        ]


class Follower:
    """The loop that keeps one shard current; `run` until cancelled."""

    def __init__(
        self,
        shard: Shard,
        assignment: Assignment,
        snapshots: Snapshots,
        record: RecordClient,
        partition_level: int,
        snapshot_every: int,
    ) -> None:
        self.shard = shard
        self._assignment = assignment
        self._snapshots = snapshots
        self._record = record
        self._level = partition_level
        self._snapshot_every = snapshot_every
        self._since_snapshot = 0
        self._feed_id = ""  # the feed the shard's position is in (from its scan or snapshot)
        self._advanced = asyncio.Condition()
        self.ready = False  # built (or restored) and following: may answer searches

    async def run(self) -> None:
        """Restores (serving at once, even while the taxonomy is down) or builds the shard,
        then follows the feed; retries on failure."""
        loaded = await asyncio.to_thread(self._snapshots.load, self.shard.policy)
        build = loaded is None or not await self._restore(loaded)
        maintaining = asyncio.create_task(self._maintain())
        try:
            await self._keep(build)
        finally:
            maintaining.cancel()
            self.shard.stop_rebuilds()

    async def _keep(self, build: bool) -> None:
        while True:
            try:
                if build:
                    await self._build()
                    build = False
                self.ready = True
                await self._wake()  # callers waiting for a position this one already holds
                await self._report_built()
                await self._follow()
                build = True  # the feed no longer keeps our position
            except VisualSearchError as error:
                log.warning("following the record failed (%s); again in %.0fs", error, RETRY_S)
                await asyncio.sleep(RETRY_S)
            except Exception:  # a bug: say so loudly, rebuild rather than serve a stale shard
                log.exception("following the record broke; rebuilding in %.0fs", RETRY_S)
                build = True
                await asyncio.sleep(RETRY_S)

    async def _maintain(self) -> None:
        """Rebuilds the partitions due for it (trained, switched to another spec as they grow,
        or compacted), one at a time, and snapshots each result."""
        while True:
            await asyncio.sleep(MAINTAIN_S)
            if not self.ready:
                continue
            for name, spec in await asyncio.to_thread(self.shard.due):
                try:
                    if await asyncio.to_thread(self.shard.rebuild, name, spec):
                        await self._snapshot()
                except Exception:  # a bug: the partition serves on as it was
                    log.exception("rebuilding partition %s as %s failed", name, spec)

    async def _restore(self, loaded: Loaded) -> bool:
        """Takes a checked snapshot and the routing table it was taken with (the feed's route
        entries after it follow), unless it holds another model version than configured."""
        configured = self.shard.model_version
        if configured and loaded.model_version != configured:
            log.warning(
                "the snapshot holds model version %s, not the configured %s: rebuilding",
                loaded.model_version,
                configured,
            )
            return False
        self._assignment.routes.rows = {str(r.partition_id): r for r in loaded.routes}
        self._feed_id = loaded.feed_id
        await asyncio.to_thread(self.shard.restore, loaded)
        log.info(
            "restored %d vectors at seq %d from a checked snapshot", self.shard.count, loaded.seq
        )
        return True

    async def _snapshot(self) -> None:
        """Writes a snapshot of the shard with the routing table it follows."""

        def write(seq: int, version: str, partitions: list[Partition]) -> None:
            routes = list(self._assignment.routes.rows.values())
            self._snapshots.write(seq, version, partitions, routes, self._feed_id)

        await asyncio.to_thread(self.shard.snapshot, write)
        self._since_snapshot = 0

    def _take_routes(self, tree: TreeState) -> None:
        """The routing table as the tree was read; the feed's later route entries update it."""
        self._assignment.routes.rows = {str(r.partition_id): r for r in tree.routes}

    async def wait_for(self, seq: int, timeout: float | None) -> None:
        """Returns once the shard is built and has applied the feed up to `seq`; with `seq`
        0, at once if it is built.

        Raises:
            Unavailable: not built yet (seq 0), or not there within `timeout`.
        """
        if self.ready and self.shard.seq >= seq:
            return
        if not seq:
            raise Unavailable("the shard is building its partitions from the record")
        try:
            async with self._advanced:
                await asyncio.wait_for(
                    self._advanced.wait_for(lambda: self.ready and self.shard.seq >= seq), timeout
                )
        except TimeoutError:
            raise Unavailable(
                f"the shard has applied the feed up to {self.shard.seq}, not yet {seq}"
            ) from None

    async def close(self) -> None:
        """Writes a last snapshot if anything was applied since the previous one."""
        if self.ready and self._since_snapshot:
            await self._snapshot()
        await self._record.close()

    async def _build(self) -> None:
        """Replaces the partitions with a scan of those assigned here, as of one position."""
        started = time.monotonic()
        while True:
            tree = await self._record.tree()
            self._take_routes(tree)
            self._feed_id = tree.feed_id
            parts = partition_map(tree.nodes, self._level, tree.split)
            owned = sorted(
                node for node, serving in parts.items()
                if node == serving and self.shard.owns(str(node))
            )  # fmt: skip
            scanned, seq, version = await self._scan(owned) if owned else ([], tree.seq, "")
            after = await self._record.tree()
            if (after.version, after.routes, after.split) == (
                tree.version,
                tree.routes,
                tree.split,
            ):
                break
            log.info("the tree, routing or splits changed during the scan; scanning again")
        await asyncio.to_thread(self.shard.reset, seq, version, scanned)
        await self._snapshot()
        log.info(
            "built %d vectors in %d partitions from the record at seq %d in %.1fs",
            self.shard.count,
            len(owned),
            seq,
            time.monotonic() - started,
        )
        await self._wake()

    async def _follow(self) -> None:
        """Applies the feed from the shard's position until it says to rebuild."""
        queue: asyncio.Queue[object] = asyncio.Queue(maxsize=4 * BATCH)
        pump = asyncio.create_task(self._pump(queue))
        try:
            while True:
                for name in self._assignment.due():
                    await asyncio.to_thread(self.shard.drop, name)
                    log.info("partition %s dropped: it moved away", name)
                for name in await asyncio.to_thread(
                    self.shard.drop_retired, self._assignment.grace_s
                ):
                    log.info("partition %s dropped: it was split", name)
                try:
                    batch = [await asyncio.wait_for(queue.get(), DRAIN_CHECK_S)]
                except TimeoutError:
                    continue
                while len(batch) < BATCH and not queue.empty():
                    batch.append(queue.get_nowait())
                run: list[Change] = []
                for entry in batch:
                    if isinstance(entry, Change) and entry.kind not in (ROUTE, SPLIT):
                        run.append(entry)
                        continue
                    if run:  # what came before, applied first
                        await self._apply(run)
                        run = []
                    if isinstance(entry, Change) and entry.kind == SPLIT:
                        await self._apply([entry])  # the partition kept for its grace is whole
                    elif isinstance(entry, Change):
                        await self._route(entry)
                    elif isinstance(entry, BaseException):
                        raise entry
                    else:
                        log.warning("the feed no longer keeps seq %d: rebuilding", self.shard.seq)
                        return
                if run:
                    await self._apply(run)
        finally:
            pump.cancel()

    async def _route(self, change: Change) -> None:
        """A partition's routing changed: build it if it is newly ours, drain it if not."""
        assert change.route is not None
        _, lost = self._assignment.update(change.route)
        name = str(change.route.partition_id)
        seq = 0
        # by what the shard holds, not by what the routes said before: a route entry replayed
        # after a failed scan must scan again
        if self._assignment(name) and not self.shard.holds(name):
            items, seq, _ = await self._scan([change.route.partition_id])
            await asyncio.to_thread(self.shard.take, name, items)
            log.info(
                "partition %s assigned here: built %d vectors at seq %d", name, len(items), seq
            )
        await self._report_built(seq)
        if lost:
            log.info("partition %s moved away: kept for the grace period, then dropped", name)
        await asyncio.to_thread(self.shard.apply, [change])  # moves the position only
        await self._wake()

    async def _report_built(self, seq: int = 0) -> None:
        """Tells the record which partitions this shard, a target of their move, has built."""
        address = self._assignment.address
        for partition in self._assignment.building():
            try:
                route = await self._record.partition_ready(
                    partition, address, seq or self.shard.seq
                )
            except FailedPrecondition as error:  # replayed from an older position: the feed
                log.info("partition %d: %s", partition, error)  # will say how it ended
                continue
            self._assignment.update(route)

    async def _pump(self, queue: asyncio.Queue[object]) -> None:
        try:
            async for change in self._record.changes(self.shard.seq, self._feed_id):
                await queue.put(_REBUILD if change is None else change)
                if change is None:
                    return
        except VisualSearchError as error:
            await queue.put(error)
        else:
            await queue.put(Unavailable("the taxonomy ended the feed"))

    async def _apply(self, changes: Sequence[Change]) -> None:
        wanted = await asyncio.to_thread(self.shard.apply, changes)
        if wanted:  # items moved in from elsewhere: their vectors come from the record
            fetched, _, _ = await self._scan([], wanted)
            gone = await asyncio.to_thread(self.shard.apply, changes, fetched)
            if gone:  # deleted from the record since: a later entry of the feed says so
                log.info("%d items moved here are gone from the record since", len(gone))
                deletes = [Change(changes[-1].seq, DELETE, item_id=i) for i in gone]
                await asyncio.to_thread(self.shard.apply, [*changes, *deletes], fetched)
        self._since_snapshot += len(changes)
        await self._wake()
        if self._since_snapshot >= self._snapshot_every:
            await self._snapshot()

    async def _wake(self) -> None:
        async with self._advanced:
            self._advanced.notify_all()

    async def _scan(
        self, partitions: Sequence[int], item_ids: Sequence[str] = ()
    ) -> tuple[list[ItemState], int, str]:
        """The items (with vectors of the version served) and the position they reflect."""
        return await self._record.scan(partitions, item_ids, self.shard.model_version)
