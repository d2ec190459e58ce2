"""The load generator's command line and the summary of its calls, without a cluster."""

from pathlib import Path

import pytest

from infra.load_plan import Call, parse_duration, parse_mix, plan_from, sample, summarise, table


def test_a_mix_names_each_call_with_its_weight_and_drops_zero_weights() -> None:
    assert parse_mix("search=6, similar=3,ingest=1") == {
        "SearchByImage": 6,
        "SimilarProducts": 3,
        "Ingest": 1,
    }
    assert parse_mix("similar=1,ingest=0") == {"SimilarProducts": 1}


@pytest.mark.parametrize(
    ("mix", "named"),
    [
        ("search=6,browse=2", "unknown call 'browse'"),
        ("search=-1", "whole number"),
        ("search=x", "whole number"),
        ("search=0", "no call a weight above 0"),
    ],
)
def test_a_bad_mix_says_what_is_wrong(mix: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        parse_mix(mix)


def test_durations_read_seconds_minutes_and_hours() -> None:
    assert [parse_duration(text) for text in ("30", "30s", "1.5m", "1h")] == [30, 30, 90, 3600]
    for bad in ("", "30x", "-5s", "0s"):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)


def test_a_command_line_becomes_a_plan() -> None:
    argv = "--target a:1,b:2 --mix similar=1 --users 8 --count 30 --out var/load/x --token secret"
    plan = plan_from(argv.split())
    assert plan.targets == ("a:1", "b:2")
    assert plan.mix == {"SimilarProducts": 1}
    assert (plan.users, plan.rate, plan.count, plan.duration_s) == (8, None, 30, None)
    assert (plan.out, plan.token) == (Path("var/load/x"), "secret")


def test_a_rate_without_users_gets_one_user_per_four_calls_a_second() -> None:
    plan = plan_from(["--rate", "10", "--duration", "2m", "--out", "x"])
    assert (plan.rate, plan.users, plan.duration_s) == (10, 3, 120)


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--out", "x"], "one of the arguments --duration --count is required"),
        (["--count", "3", "--duration", "1s", "--out", "x"], "not allowed with"),
        (["--count", "0", "--out", "x"], "--count must be at least 1"),
        (["--items", "0", "--count", "3", "--out", "x"], "--items must be at least 1"),
        (["--rate", "0", "--count", "3", "--out", "x"], "--rate must be above zero"),
        (["--mix", "search=0", "--count", "3", "--out", "x"], "no call a weight"),
    ],
)
def test_a_bad_command_line_is_refused_naming_the_argument(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        plan_from(argv)
    assert named in capsys.readouterr().err


def test_the_summary_counts_by_kind_and_takes_percentiles_of_answered_calls() -> None:
    searches = [Call("SearchByImage", n * 0.1, (n + 1) / 1000, "OK") for n in range(100)]
    failures = [
        Call("SimilarProducts", 1.0, 0.5, "UNAVAILABLE"),
        Call("SimilarProducts", 2.0, 0.001, "RESOURCE_EXHAUSTED"),
        Call("SimilarProducts", 3.0, 0.002, "RESOURCE_EXHAUSTED"),
    ]
    summary = summarise([*searches, *failures])
    assert summary.elapsed_s == pytest.approx(9.9 + 0.1)  # first start to the last answer
    search = summary.kinds["SearchByImage"]
    assert (search.calls, search.answered, search.errors) == (100, 100, {})
    assert search.per_s == pytest.approx(10.0)
    # latencies 1..100 ms: linear interpolation between the ranks
    assert (search.p50_ms, search.p95_ms, search.p99_ms) == pytest.approx((50.5, 95.05, 99.01))
    similar = summary.kinds["SimilarProducts"]
    assert (similar.calls, similar.answered, similar.p50_ms) == (3, 0, None)
    assert similar.errors == {"RESOURCE_EXHAUSTED": 2, "UNAVAILABLE": 1}
    assert summary.total.calls == 103
    assert summary.total.errors == similar.errors
    lines = table(summary).splitlines()
    assert lines[2].split()[:2] == ["SimilarProducts", "3"]
    assert "RESOURCE_EXHAUSTED 2, UNAVAILABLE 1" in lines[2]


def test_no_calls_summarise_to_zeros() -> None:
    summary = summarise([])
    assert (summary.total.calls, summary.total.per_s, summary.total.p99_ms) == (0, 0.0, None)


def test_a_sample_spreads_over_the_items() -> None:
    assert sample(list(range(10)), 3) == [0, 3, 6]
    assert sample(list(range(3)), 10) == [0, 1, 2]
