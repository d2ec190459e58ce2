"""Outgoing calls: which methods are retried, and a failed call's status kept as its exception."""

import json

import grpc
import pytest
from google.protobuf import descriptor_pool

from common import clients, errors
from protos.visualsearch.v1 import encoder_pb2, index_pb2, taxonomy_pb2  # noqa: F401 (registers)


def test_the_retry_policy_names_only_methods_that_exist_and_no_edit() -> None:
    pool = descriptor_pool.Default()
    names = json.loads(json.dumps(clients._RETRY))["methodConfig"][0]["name"]
    for name in names:
        service = pool.FindServiceByName(name["service"])
        if "method" in name:
            assert name["method"] in {method.name for method in service.methods}
    retried = {name.get("method") for name in names if name["service"].endswith("Taxonomy")}
    assert not retried & {"Edit", "MovePartition", "SplitPartition"}


@pytest.mark.parametrize(
    ("code", "kind", "answered"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, errors.InvalidArgument, True),
        (grpc.StatusCode.UNAVAILABLE, errors.Unavailable, False),
        (grpc.StatusCode.DEADLINE_EXCEEDED, errors.DeadlineExceeded, False),
        (grpc.StatusCode.CANCELLED, errors.Cancelled, False),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, errors.ResourceExhausted, False),
        (grpc.StatusCode.UNIMPLEMENTED, errors.VisualSearchError, True),
    ],
)
def test_a_failed_call_keeps_its_status_code_and_says_whether_it_was_answered(
    code: grpc.StatusCode, kind: type[errors.VisualSearchError], answered: bool
) -> None:
    failure = grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "why")

    found = clients.errors_for(failure, "shard a:1")

    assert type(found) is kind
    assert found.code == code.name
    assert str(found) == "shard a:1: why"
    assert isinstance(found, errors.NoAnswer) is not answered
