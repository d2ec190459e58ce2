"""The stubs in the tree are exactly what the .proto files generate."""

from pathlib import Path

from protos.generate import ROOT, generate


def test_stubs_in_tree_match_a_fresh_generation(tmp_path: Path) -> None:
    fresh = generate(tmp_path)
    assert fresh, "no stubs generated"
    for path in fresh:
        in_tree = ROOT / path.relative_to(tmp_path)
        assert in_tree.exists(), f"{in_tree} is missing: run `make protos`"
        assert in_tree.read_text() == path.read_text(), f"{in_tree} is stale: run `make protos`"
