"""The training arithmetic: bf16 where the CPU has native bfloat16, else fp32, or as asked."""

import pytest

from encoder_svc.precision import resolve


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"avx2", "amx_bf16", "amx_tile"}, "bf16"),
        ({"avx512f", "avx512_bf16"}, "bf16"),
        ({"avx2", "avx512f"}, "fp32"),
        (set(), "fp32"),
    ],
)
def test_auto_picks_bf16_only_on_a_cpu_with_native_bfloat16(flags: set[str], expected: str) -> None:
    assert resolve("auto", flags) == expected


def test_an_explicit_precision_is_kept_whatever_the_cpu() -> None:
    assert resolve("fp32", {"amx_bf16"}) == "fp32"
    assert resolve("bf16", set()) == "bf16"


def test_an_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        resolve("fp16")
