"""The gateway's flows against an in-memory fake of the cluster's clients: what a partial
answer means, deadlines and cancellation, shards left out while they fail, SearchMany, and
Ingest's per-item errors."""

import asyncio
import dataclasses
import time

import pytest

from common.config import ClusterConfig, GatewayConfig, IndexConfig
from common.errors import (
    DeadlineExceeded,
    InvalidArgument,
    ItemFailure,
    Unavailable,
)
from gateway.ingest import NewItem
from gateway.search import Query, SearchResult
from tests.fake_cluster import DEFAULTS, SANDALS, UNDECODABLE, FakeCluster, gateway, writer

SHARD_A, SHARD_B = DEFAULTS.shard_addresses
EVERYWHERE = ["Footwear"]  # above the partition level: both partitions, so both shards


def search(cluster: FakeCluster, categories: list[str] = EVERYWHERE, **kw: float) -> SearchResult:
    async def run() -> SearchResult:
        return await (await gateway(cluster)).search_by_image(b"photo", 10, categories, **kw)

    return asyncio.run(run())


def test_a_shard_that_is_down_makes_the_answer_partial_and_the_others_still_count() -> None:
    result = search(FakeCluster(down={SHARD_B}))

    assert result.partial and result.failed_shards == [SHARD_B]
    assert result.results  # the other shard's partition is answered


def test_a_shard_that_refuses_the_query_is_the_callers_error_not_a_partial_answer() -> None:
    with pytest.raises(InvalidArgument, match="floats"):
        search(FakeCluster(refusing={SHARD_B}))


def test_a_slow_shard_leaves_a_partial_answer_inside_the_deadline() -> None:
    config = dataclasses.replace(DEFAULTS, gateway=GatewayConfig(deadline_s=0.3))
    cluster = FakeCluster(config=config, slow={SHARD_B: 30.0})

    started = time.monotonic()
    result = search(cluster)

    assert time.monotonic() - started < 5.0  # not the slow shard's 30 s
    assert result.partial and result.failed_shards == [SHARD_B]
    assert {r.item.id for r in result.results}  # the fast shard's neighbours


def test_the_callers_own_deadline_bounds_the_calls_below() -> None:
    cluster = FakeCluster(slow={SHARD_B: 30.0})  # the gateway's own deadline: 2 s

    started = time.monotonic()
    result = search(cluster, time_left=0.3)

    assert time.monotonic() - started < 1.5
    assert result.failed_shards == [SHARD_B]


def test_cancelling_a_search_cancels_the_shard_calls_below_it() -> None:
    cluster = FakeCluster(slow={SHARD_A: 30.0, SHARD_B: 30.0})

    async def run() -> None:
        task = asyncio.create_task(search_async(cluster))
        while len(cluster.searched) < 2:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert sorted(cluster.cancelled) == [SHARD_A, SHARD_B]


async def search_async(cluster: FakeCluster) -> SearchResult:
    return await (await gateway(cluster)).search_by_image(b"photo", 10, EVERYWHERE)


def test_a_shard_that_keeps_failing_is_left_out_until_its_health_check_passes() -> None:
    cluster = FakeCluster(down={SHARD_B})
    eject_after = DEFAULTS.gateway.eject_after

    async def run() -> None:
        front = await gateway(cluster, probe_s=0.05)
        front._health.start()
        try:
            for _ in range(eject_after):
                await front.search_by_image(b"photo", 10, EVERYWHERE)
            asked = len(cluster.searched)
            result = await front.search_by_image(b"photo", 10, EVERYWHERE)
            assert [shard for shard, _ in cluster.searched[asked:]] == [SHARD_A]  # B left out
            assert result.partial and result.failed_shards == [SHARD_B]
            await asyncio.sleep(0.3)
            assert SHARD_B in front._health.out  # its health check still fails
            cluster.down.clear()
            await asyncio.sleep(0.3)
            result = await front.search_by_image(b"photo", 10, EVERYWHERE)
            assert not result.partial
            assert {shard for shard, _ in cluster.searched[-2:]} == {SHARD_A, SHARD_B}
        finally:
            await front._health.stop()

    asyncio.run(run())


def test_search_many_answers_in_order_with_one_error_per_bad_query() -> None:
    big = b"x" * (DEFAULTS.encoder.max_image_bytes + 1)
    queries = [
        Query(image=b"photo"),
        Query(image=UNDECODABLE),
        Query(product_id="s1"),
        Query(product_id="nope"),
        Query(),
        Query(image=big),
        Query(product_id="f2"),
    ]

    async def run() -> list[SearchResult | ItemFailure]:
        return await (await gateway(FakeCluster())).search_many(queries, 3, [])

    answers = asyncio.run(run())

    assert len(answers) == len(queries)
    kinds = [a.code if isinstance(a, ItemFailure) else "OK" for a in answers]
    refused = "INVALID_ARGUMENT"
    assert kinds == ["OK", refused, "OK", "NOT_FOUND", refused, refused, "OK"]
    failures = [a for a in answers if isinstance(a, ItemFailure)]
    assert [f.index for f in failures] == [1, 3, 4, 5]
    assert "encoder.max_image_bytes" in failures[3].message
    assert failures[1].item_id == "nope"
    by_id = answers[2]
    assert isinstance(by_id, SearchResult)
    assert "s1" not in [r.item.id for r in by_id.results]  # the product itself is left out
    assert [r.item.leaf for r in by_id.results] == [SANDALS]


def test_search_many_without_an_encoder_still_answers_its_product_queries() -> None:
    async def run() -> list[SearchResult | ItemFailure]:
        front = await gateway(FakeCluster(encoder_down=True))
        return await front.search_many([Query(image=b"photo"), Query(product_id="s1")], 3, [])

    image, product = asyncio.run(run())

    assert isinstance(image, ItemFailure) and image.code == "UNAVAILABLE"
    assert isinstance(product, SearchResult) and product.results


@pytest.mark.parametrize("count", [0, DEFAULTS.gateway.max_batch + 1])
def test_search_many_refuses_no_queries_or_too_many(count: int) -> None:
    async def run() -> None:
        await (await gateway(FakeCluster())).search_many([Query(b"photo")] * count, 3, [])

    with pytest.raises(InvalidArgument, match="gateway.max_batch" if count else "no queries"):
        asyncio.run(run())


def test_an_ingest_whose_every_item_fails_answers_each_items_error() -> None:
    cluster = FakeCluster()
    items = [NewItem("a", UNDECODABLE), NewItem("", b"photo"), NewItem("c", b"")]

    ingested, failures, seq = asyncio.run(writer(cluster).ingest(items))

    assert (ingested, seq, cluster.recorded) == (0, 0, {})
    assert [(f.index, f.item_id, f.code) for f in failures] == [
        (0, "a", "INVALID_ARGUMENT"),
        (1, "", "INVALID_ARGUMENT"),
        (2, "c", "INVALID_ARGUMENT"),
    ]
    assert "decode" in failures[0].message


def test_an_ingest_keeps_the_good_items_of_a_batch_with_bad_ones() -> None:
    cluster = FakeCluster()
    big = b"x" * (DEFAULTS.encoder.max_image_bytes + 1)
    items = [NewItem("a", b"photo"), NewItem("b", big), NewItem("a", b"photo")]

    ingested, failures, seq = asyncio.run(writer(cluster).ingest(items))

    assert (ingested, list(cluster.recorded)) == (1, ["a"]) and seq > 0
    assert [(f.index, f.code) for f in failures] == [
        (1, "INVALID_ARGUMENT"),
        (2, "INVALID_ARGUMENT"),
    ]
    assert "encoder.max_image_bytes" in failures[0].message
    assert "twice" in failures[1].message


def test_a_write_waiting_to_be_visible_reports_a_shard_out_of_time_with_its_code() -> None:
    config = ClusterConfig(gateway=GatewayConfig(deadline_s=0.2))
    cluster = FakeCluster(config=config, slow={SHARD_B: 30.0})

    with pytest.raises(DeadlineExceeded):
        asyncio.run(writer(cluster).delete(["s1"], wait_visible=True, time_left=0.2))

    with pytest.raises(Unavailable):
        asyncio.run(writer(FakeCluster(encoder_down=True)).ingest([NewItem("a", b"photo")]))


def test_a_partition_without_an_answer_names_its_replicas_left_out_as_failed_too() -> None:
    config = ClusterConfig(index=IndexConfig(ports=(7001, 7002), replicas=2))
    first, second = config.shard_addresses
    cluster = FakeCluster(config=config, down={first})

    async def run() -> SearchResult:
        front = await gateway(cluster)
        for _ in range(2 * config.gateway.eject_after):  # fails over each time; then left out
            assert not (await front.search_by_image(b"photo", 10, EVERYWHERE)).partial
        assert front._health.out == {first}
        cluster.down.add(second)
        return await front.search_by_image(b"photo", 10, EVERYWHERE)

    result = asyncio.run(run())

    assert result.partial and result.failed_shards == [first, second]
