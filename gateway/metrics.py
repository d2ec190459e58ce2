"""The gateway's own metrics, beside the per-call ones every service has (common.observe)."""

from prometheus_client import Counter, Gauge, Histogram

FANOUT = Histogram(
    "visualsearch_gateway_fanout_shards",
    "Shards asked by one search, failovers to another replica included",
    buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64),
)
PARTIAL = Counter(
    "visualsearch_gateway_partial_total",
    "Searches answered without some partition, because no replica of it answered",
)
EJECTED = Gauge(
    "visualsearch_gateway_ejected_shards",
    "Shards left out of searches until their health check passes",
)
BATCH = Histogram(
    "visualsearch_gateway_batch_queries",
    "Queries in one SearchMany call",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
