"""The load generator: a mix of the gateway's calls as Locust users, at a fixed concurrency or
rate, for a duration or a count of calls; prints what it measured and writes it as JSON and as
Locust's HTML report.

    python -m infra.load --target 127.0.0.1:50051 --mix search=6,similar=3,ingest=1
        (--users N | --rate R) (--duration 30s | --count N) --out var/load/NAME [--token T]

SearchByImage sends images of catalog items, SimilarProducts their ids (they must be in the
cluster: `make demo`, say, loads the catalog), Ingest new ids with their images. Latency
percentiles are of the answered calls; a failed call counts under its status code's name.
"""

import contextlib
import itertools
import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import gevent
import grpc
import grpc.experimental.gevent
from grpc_health.v1 import health_pb2, health_pb2_grpc
from locust import User
from locust.env import Environment
from locust.exception import StopUser
from locust.html import get_html_report

from catalog.generate import generate
from catalog.items import CatalogItem, open_catalog
from infra import workspace
from infra.ingest import ingest_catalog
from infra.load_plan import OK, Call, Plan, plan_from, sample, summarise, table
from protos.visualsearch.v1 import gateway_pb2, gateway_pb2_grpc

SPAWN_PER_S = 100.0  # users started per second (Locust warns above 100)
POLL_S = 0.05
CONNECT_S = 2.0  # a user waits this long for its channel to connect before calling


class CallFailed(Exception):
    """A call that ended with a status other than OK; Locust's report groups by its text."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code


@dataclass
class Budget:
    """Which calls may still start: until `count` have started or `duration_s` has passed."""

    count: int | None
    duration_s: float | None
    started: int = 0
    in_flight: int = 0
    since: float = field(default_factory=time.monotonic)

    def take(self) -> bool:
        """True, counting the call as started and in flight, if one more may start."""
        if not self._more():
            return False
        self.started += 1
        self.in_flight += 1
        return True

    def give_back(self) -> None:
        self.in_flight -= 1

    @property
    def spent(self) -> bool:
        """No call may start and none is in flight."""
        return self.in_flight == 0 and not self._more()

    def _more(self) -> bool:
        if self.count is not None and self.started >= self.count:
            return False
        return self.duration_s is None or time.monotonic() - self.since < self.duration_s


@dataclass(frozen=True)
class Workload:
    """What the calls send: catalog items (their images read once) and a tag for new ids."""

    catalog: Path
    items: list[CatalogItem]
    images: dict[str, bytes]
    tag: str


class _Bearer(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Adds `authorization: Bearer <token>` to every call."""

    def __init__(self, token: str) -> None:
        self._metadata = [("authorization", f"Bearer {token}")]

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        metadata = [*(details.metadata or ()), *self._metadata]
        return continuation(details._replace(metadata=metadata), request)


class _Timer(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Times every call and fires Locust's request event with its outcome."""

    def __init__(self, environment: Environment) -> None:
        self._environment = environment

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        name = details.method.rsplit("/", 1)[-1]
        started, answer, failure, size = time.monotonic(), None, None, 0
        try:
            answer = continuation(details, request)
            response = answer.result()
            size = response.ByteSize()
            failure = _item_failure(response)
        except grpc.RpcError as error:
            failure = CallFailed(error.code().name, error.details() or "")
        self._environment.events.request.fire(
            request_type="grpc",
            name=name,
            response_time=(time.monotonic() - started) * 1000,
            response_length=size,
            response=answer,
            context={"started": started},
            exception=failure,
        )
        return answer


def _item_failure(response: Any) -> CallFailed | None:
    """An Ingest answered whole but with an item refused fails under that item's code."""
    errors = getattr(response, "errors", None)
    return CallFailed(errors[0].code, errors[0].message) if errors else None


class GatewayUser(User):
    """One caller of the gateway: picks a call of the mix, waits as the pace says, again."""

    abstract = True
    plan: ClassVar[Plan]
    budget: ClassVar[Budget]
    work: ClassVar[Workload]
    _turns: ClassVar[Any] = itertools.count()  # spreads users over the targets in turn

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        turn = next(self._turns)
        self._n = itertools.count(turn * 1_000_000)  # this user's share of the item numbers
        self._channel = grpc.insecure_channel(self.plan.targets[turn % len(self.plan.targets)])
        self._slot = 0.0  # when a paced user calls next (monotonic seconds)
        intercepted = grpc.intercept_channel(
            self._channel, *_bearer(self.plan), _Timer(environment)
        )
        self.stub = gateway_pb2_grpc.VisualSearchStub(intercepted)

    def on_start(self) -> None:
        """Connects before the first call (a connection's set-up is not a call's latency);
        a paced user then waits for its first slot, at a random point of its period, so that
        the users do not call in step."""
        with contextlib.suppress(grpc.RpcError):  # its calls will say why
            health = health_pb2_grpc.HealthStub(self._channel)
            health.Check(health_pb2.HealthCheckRequest(), timeout=CONNECT_S, wait_for_ready=True)
        if self.plan.rate:
            self._slot = time.monotonic() + random.uniform(0, self._period)
            gevent.sleep(self._slot - time.monotonic())

    def wait_time(self) -> float:
        """None for a closed loop; paced, until this user's next slot, one a period after the
        last (a slot already past is dropped, not made up in a burst)."""
        if not self.plan.rate:
            return 0.0
        now = time.monotonic()
        self._slot = max(self._slot + self._period, now)
        return self._slot - now

    @property
    def _period(self) -> float:
        return self.plan.users / self.plan.rate if self.plan.rate else 0.0

    def on_stop(self) -> None:
        self._channel.close()

    def call(self, send: Callable[[CatalogItem, int], object]) -> None:
        """Sends one call if the budget allows (the interceptor records it), else stops."""
        if not self.budget.take():
            raise StopUser()
        n = next(self._n)
        try:
            send(self.work.items[n % len(self.work.items)], n)
        except grpc.RpcError:
            pass  # recorded by the interceptor under its code
        finally:
            self.budget.give_back()

    def search(self) -> None:
        self.call(
            lambda item, _: self.stub.SearchByImage(
                gateway_pb2.SearchByImageRequest(image=self.work.images[item.id], k=self.plan.k),
                timeout=self.plan.timeout_s,
            )
        )

    def similar(self) -> None:
        self.call(
            lambda item, _: self.stub.SimilarProducts(
                gateway_pb2.SimilarProductsRequest(product_id=item.id, k=self.plan.k),
                timeout=self.plan.timeout_s,
            )
        )

    def ingest(self) -> None:
        self.call(
            lambda item, n: self.stub.Ingest(
                gateway_pb2.IngestRequest(items=[self._new_item(item, n)]),
                timeout=self.plan.timeout_s,
            )
        )

    def _new_item(self, item: CatalogItem, n: int) -> gateway_pb2.IngestItem:
        return gateway_pb2.IngestItem(
            id=f"{self.work.tag}-{n}",
            image=self.work.images[item.id],
            leaf=item.leaf,
            title=item.title,
            colour=item.colour,
            usage=item.usage,
        )


TASKS = {
    "SearchByImage": GatewayUser.search,
    "SimilarProducts": GatewayUser.similar,
    "Ingest": GatewayUser.ingest,
}


def _bearer(plan: Plan) -> list[_Bearer]:
    return [_Bearer(plan.token)] if plan.token else []


def prepare(plan: Plan, work: Workload) -> None:
    """Ingests the workload's items through the first target (idempotent by id), waiting until
    they are searchable, so that SimilarProducts finds them."""
    with grpc.insecure_channel(plan.targets[0]) as channel:
        stub = gateway_pb2_grpc.VisualSearchStub(grpc.intercept_channel(channel, *_bearer(plan)))
        with open_catalog(work.catalog) as catalog:
            loaded, errors = ingest_catalog(stub, catalog, work.items, workers=1)
    print(f"prepared: {loaded} items ingested, {len(errors)} refused", flush=True)
    for error in errors[:3]:
        print(f"  {error.item_id}: {error.code} {error.message}")


def workload(catalog_dir: Path | None, items: int) -> Workload:
    """`items` of the catalog (spread over it), their images read into memory."""
    folder = catalog_dir.resolve() if catalog_dir else generate(workspace.GENERATED)
    with open_catalog(folder) as catalog:
        chosen = sample(catalog.items, items)
        images = {item.id: catalog.image_bytes(item.id) for item in chosen}
    return Workload(folder, chosen, images, f"load-{int(time.time())}")


def run(plan: Plan, work: Workload) -> tuple[list[Call], Environment]:
    """Runs the plan's users on Locust until its budget is spent; returns every call."""
    budget = Budget(plan.count, plan.duration_s)
    tasks = {TASKS[name]: weight for name, weight in plan.mix.items()}
    attributes = {"plan": plan, "budget": budget, "work": work, "tasks": tasks}
    user = type("MixUser", (GatewayUser,), {**attributes, "abstract": False})
    environment = Environment(user_classes=[user], catch_exceptions=True)
    calls: list[Call] = []

    def record(name: str, response_time: float, context: dict[str, float], **kw: Any) -> None:
        failure = kw.get("exception")
        code = failure.code if isinstance(failure, CallFailed) else OK
        calls.append(Call(name, context["started"], response_time / 1000, code))

    environment.events.request.add_listener(record)
    runner = environment.create_local_runner()
    budget.since = time.monotonic()
    runner.start(plan.users, spawn_rate=SPAWN_PER_S)
    while not budget.spent:
        gevent.sleep(POLL_S)
    runner.quit()
    return calls, environment


def main(argv: Sequence[str] | None = None) -> None:
    plan = plan_from(argv)
    grpc.experimental.gevent.init_gevent()  # after Locust's monkey patching, before a channel
    work = workload(plan.catalog, plan.items)
    if plan.prepare:
        prepare(plan, work)
    pace = f"{plan.rate:g} calls/s on {plan.users} users" if plan.rate else f"{plan.users} users"
    until = f"{plan.count} calls" if plan.count else f"{plan.duration_s:g} s"
    mix = ", ".join(f"{name} {weight}" for name, weight in plan.mix.items())
    print(f"load on {', '.join(plan.targets)}: {mix}; {pace}; until {until}", flush=True)
    calls, environment = run(plan, work)
    summary = summarise(calls)
    print(table(summary))
    plan.out.mkdir(parents=True, exist_ok=True)
    shown = {"out": str(plan.out), "catalog": str(plan.catalog or ""), "token": bool(plan.token)}
    report = {"plan": {**asdict(plan), **shown}, **asdict(summary)}  # the token itself stays out
    (plan.out / "summary.json").write_text(json.dumps(report, indent=2) + "\n")
    (plan.out / "report.html").write_text(get_html_report(environment, show_download_link=False))
    print(f"written: {plan.out / 'summary.json'}, {plan.out / 'report.html'}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
