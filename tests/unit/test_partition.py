"""Contract of every partition backend, and of a Partition over each of them."""

from pathlib import Path

import faiss
import numpy as np
import pytest

from common.errors import FailedPrecondition, InvalidArgument, NotFound
from index_svc.backend import KINDS, make_backend
from index_svc.partition import Partition

DIM = 16


@pytest.fixture(params=sorted(KINDS))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _unit_vectors(n: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _partition(kind: str, n: int = 50) -> tuple[Partition, np.ndarray]:
    partition = Partition("Apparel/Topwear", "m1", DIM, kind)
    vectors = _unit_vectors(n)
    leaves = ["Apparel/Topwear/Tshirts" if i % 2 else "Apparel/Topwear/Shirts" for i in range(n)]
    partition.upsert([f"item-{i}" for i in range(n)], vectors, leaves)
    return partition, vectors


def test_backend_finds_each_stored_vector_first_with_higher_scores_closer(kind: str) -> None:
    backend = make_backend(kind, DIM)
    vectors = _unit_vectors(40)
    ids = np.arange(1000, 1040, dtype=np.int64)
    backend.add(ids, vectors)

    scores, found = backend.search(vectors, 5)

    assert backend.count() == 40
    assert found.dtype == np.int64 and found.shape == (40, 5)
    assert (found[:, 0] == ids).all()
    assert (np.diff(scores, axis=1) <= 1e-6).all()


def test_backend_pads_with_minus_one_past_its_vectors(kind: str) -> None:
    backend = make_backend(kind, DIM)
    backend.add(np.array([7, 8], dtype=np.int64), _unit_vectors(2))

    _, found = backend.search(_unit_vectors(1, seed=1), 4)

    assert sorted(found[0, :2].tolist()) == [7, 8]
    assert found[0, 2:].tolist() == [-1, -1]


def test_backend_remove_forgets_ids_and_counts_only_present_ones(kind: str) -> None:
    backend = make_backend(kind, DIM)
    vectors = _unit_vectors(10)
    backend.add(np.arange(10, dtype=np.int64), vectors)

    removed = backend.remove(np.array([3, 4, 99], dtype=np.int64))
    _, found = backend.search(vectors[3:5], 10)

    assert removed == 2
    assert backend.count() == 8
    assert not {3, 4} & set(found.ravel().tolist())


def test_backend_reconstructs_and_survives_save_and_load(kind: str, tmp_path: Path) -> None:
    backend = make_backend(kind, DIM)
    vectors = _unit_vectors(20)
    backend.add(np.arange(100, 120, dtype=np.int64), vectors)
    backend.save(tmp_path / "index")

    loaded = make_backend(kind, DIM)
    loaded.load(tmp_path / "index")

    np.testing.assert_allclose(loaded.reconstruct(105), vectors[5], atol=1e-5)
    np.testing.assert_array_equal(loaded.search(vectors, 3)[1], backend.search(vectors, 3)[1])


def test_make_backend_refuses_unknown_kinds_and_bad_dimensions() -> None:
    with pytest.raises(InvalidArgument, match="unknown index backend"):
        make_backend("annoy", DIM)
    with pytest.raises(InvalidArgument, match="positive"):
        make_backend("flat", 0)


def test_partition_search_returns_ids_scores_and_leaves_best_first(kind: str) -> None:
    partition, vectors = _partition(kind)

    hits = partition.search(vectors[3], 5)

    assert hits[0] == ("item-3", pytest.approx(1.0, abs=1e-5), "Apparel/Topwear/Tshirts")
    assert [score for _, score, _ in hits] == sorted((s for _, s, _ in hits), reverse=True)
    assert len(hits) == 5


def test_partition_search_excludes_ids_and_still_returns_k(kind: str) -> None:
    partition, vectors = _partition(kind)

    hits = partition.search(vectors[3], 5, exclude={"item-3", "item-10", "elsewhere"})

    ids = [item_id for item_id, _, _ in hits]
    assert len(ids) == 5 and not {"item-3", "item-10"} & set(ids)


def test_partition_search_asks_no_more_than_it_holds(kind: str) -> None:
    partition, vectors = _partition(kind, n=3)

    assert len(partition.search(vectors[0], 10)) == 3
    assert partition.search(vectors[0], 10, exclude={"item-0", "item-1", "item-2"}) == []


def test_partition_upsert_replaces_an_existing_id(kind: str) -> None:
    partition, vectors = _partition(kind)
    moved = _unit_vectors(1, seed=7)

    partition.upsert(["item-3"], moved, ["Apparel/Topwear/Polo"])

    assert len(partition) == 50
    vector, leaf = partition.fetch("item-3")
    np.testing.assert_allclose(vector, moved[0], atol=1e-5)
    assert leaf == "Apparel/Topwear/Polo"
    assert partition.search(moved[0], 1)[0][0] == "item-3"
    assert "item-3" not in [item_id for item_id, _, _ in partition.search(vectors[3], 3)]


def test_partition_upsert_of_a_repeated_id_keeps_the_last_row(kind: str) -> None:
    partition = Partition("Footwear/Shoes", "m1", DIM, kind)
    vectors = _unit_vectors(2)

    partition.upsert(["a", "a"], vectors, ["Footwear/Shoes/Boots", "Footwear/Shoes/Heels"])

    assert len(partition) == 1 and partition.backend.count() == 1
    assert partition.fetch("a")[1] == "Footwear/Shoes/Heels"


def test_partition_delete_counts_and_forgets(kind: str) -> None:
    partition, vectors = _partition(kind)

    assert partition.delete(["item-1", "item-2", "item-1", "nope"]) == 2
    assert len(partition) == 48 and "item-1" not in partition
    with pytest.raises(NotFound):
        partition.fetch("item-1")
    assert "item-1" not in [item_id for item_id, _, _ in partition.search(vectors[1], 10)]


def test_partition_refuses_a_query_of_another_dimension_naming_its_model_version(
    kind: str,
) -> None:
    partition, _ = _partition(kind)

    with pytest.raises(FailedPrecondition, match=f"model version '{partition.model_version}'"):
        partition.search(np.ones(DIM + 1, dtype=np.float32), 3)
    with pytest.raises(InvalidArgument, match="not one vector"):
        partition.search(np.ones((2, DIM), dtype=np.float32), 3)


def test_partition_save_and_load_keeps_ids_leaves_and_labels(kind: str, tmp_path: Path) -> None:
    partition, vectors = _partition(kind)
    partition.delete(["item-0"])
    partition.save(tmp_path / "part")

    loaded = Partition.load(tmp_path / "part")
    loaded.upsert(["new"], _unit_vectors(1, seed=9), ["Apparel/Topwear/Tshirts"])

    assert (loaded.name, loaded.model_version, loaded.dim) == ("Apparel/Topwear", "m1", DIM)
    assert len(loaded) == 50 and "item-0" not in loaded
    assert loaded.search(vectors[4], 1) == partition.search(vectors[4], 1)
    assert loaded.fetch("item-7")[1] == "Apparel/Topwear/Tshirts"
    assert loaded.search(_unit_vectors(1, seed=9)[0], 1)[0][0] == "new"


@pytest.mark.gpu
@pytest.mark.skipif(faiss.get_num_gpus() == 0, reason="faiss sees no GPU")
def test_flat_backend_searches_on_the_gpu_and_follows_writes() -> None:
    backend = make_backend("flat", DIM)
    vectors = _unit_vectors(100)
    backend.add(np.arange(100, dtype=np.int64), vectors)
    assert backend.search(vectors[:1], 1)[1][0, 0] == 0

    backend.remove(np.array([0], dtype=np.int64))

    assert backend.device().startswith("GPU")
    assert backend.search(vectors[:1], 1)[1][0, 0] != 0
