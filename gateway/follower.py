"""The gateway's copy of the taxonomy, kept current by following the taxonomy's change stream."""

import asyncio
import logging

from common.errors import VisualSearchError
from gateway.clients import Cluster
from gateway.routing import TreeView

log = logging.getLogger(__name__)

RETRY_S = 1.0  # wait before following again after the stream broke
READ_S = 5.0  # deadline of one GetTree while following


class TreeFollower:
    """Reads the tree, then rereads it after every committed edit the stream announces."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster
        self.view: TreeView | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, timeout: float) -> None:
        """Reads the tree (waiting up to `timeout` for the taxonomy to serve), then follows it.

        Raises:
            Unavailable: the taxonomy did not answer in time.
        """
        await self._reload(timeout)
        self._task = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def current(self, timeout: float, min_seq: int = 0, fresh: bool = False) -> TreeView:
        """The followed tree; read directly while the follower has none yet, when it is older
        than feed position `min_seq`, or when the caller needs a `fresh` read (a path the
        followed tree does not know may be newer than it)."""
        view = self.view
        if view is None or view.seq < min_seq or fresh:
            view = await self._cluster.tree(timeout)
            if self.view is None or view.seq > self.view.seq:
                self.view = view
        return view

    async def _follow(self) -> None:
        while True:
            try:
                assert self.view is not None
                async for seq in self._cluster.tree_changes(self.view.seq):
                    if seq > self.view.seq:
                        await self._reload(READ_S)
            except VisualSearchError as error:
                log.warning("following the taxonomy failed (%s); again in %.0fs", error, RETRY_S)
            await asyncio.sleep(RETRY_S)
            await self._reload_quietly()

    async def _reload_quietly(self) -> None:
        try:
            await self._reload(READ_S)
        except VisualSearchError as error:
            log.warning("reading the taxonomy's tree failed (%s)", error)

    async def _reload(self, timeout: float) -> None:
        self.view = await self._cluster.tree(timeout, wait_for_ready=True)
        log.info("taxonomy tree version %d (%d nodes)", self.view.version, len(self.view.paths))
