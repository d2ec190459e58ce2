"""Contract of the partition over every kind of index: exact, HNSW, IVF, IVF-PQ with
refinement and a PCA variant, each built from its FAISS factory string."""

import threading
from pathlib import Path

import faiss
import numpy as np
import pytest

from common.errors import InvalidArgument, NotFound
from common.feed import ItemState
from index_svc.backend import make_backend
from index_svc.partition import Partition
from index_svc.specs import (
    DEFAULTS,
    Filter,
    Policy,
    SearchParams,
    bytes_per_vector,
    is_exact,
    training_size,
)

DIM = 16
N = 1000
SPECS = ["Flat", "HNSW16", "IVF16,Flat", "IVF16,PQ8x4", "PCA8,HNSW16"]
LEAVES = ["Apparel/Topwear/Tshirts", "Apparel/Topwear/Shirts", "Apparel/Bottomwear/Jeans"]
LEAF_IDS = {LEAVES[0]: 3, LEAVES[1]: 4, LEAVES[2]: 6}  # node ids; 2 is Apparel/Topwear
COLOURS = ["Black", "White", "Red", "Blue", "Green"]


@pytest.fixture(params=SPECS)
def spec(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    """Unit vectors clustered around 20 centres, as embeddings are (ANN is meaningless on
    uniform noise)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).standard_normal((20, DIM))
    vectors = centres[rng.integers(0, 20, n)] + 0.3 * rng.standard_normal((n, DIM))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


def _state(item_id: str, leaf: str, colour: str = "", usage: str = "") -> ItemState:
    return ItemState(item_id, LEAF_IDS.get(leaf, 9), leaf, 102, colour=colour, usage=usage)


def _put(partition: Partition, ids: list[str], vectors: np.ndarray, leaves: list[str]) -> None:
    partition.upsert([_state(i, leaf) for i, leaf in zip(ids, leaves, strict=True)], vectors)


def _policy(spec: str, exact_below: int = 100) -> Policy:
    return Policy(spec=spec, exact_below=exact_below)


def _partition(spec: str, n: int = N) -> tuple[Partition, np.ndarray]:
    partition = Partition("102", "m1", DIM, _policy(spec))
    vectors = _vectors(n)
    states = [
        _state(f"item-{i}", LEAVES[i % 3], COLOURS[i % 5], "Casual" if i % 2 else "Formal")
        for i in range(n)
    ]
    partition.upsert(states, vectors)
    return partition, vectors


def _search(partition: Partition, queries: np.ndarray, k: int, **kwargs: object) -> list:
    return partition.search(queries, k, partition.policy.resolve(DEFAULTS), **kwargs)  # type: ignore[arg-type]


def test_a_spec_that_needs_training_serves_exactly_until_it_has_enough_vectors(spec: str) -> None:
    partition = Partition("102", "m1", DIM, _policy(spec))
    _put(partition, ["a", "b"], _vectors(2), [LEAVES[0]] * 2)

    assert partition.spec == ("Flat" if training_size(spec, DIM) > 2 else spec)

    bulk, _ = _partition(spec)  # a first write big enough trains at once
    assert bulk.spec == spec and bulk.backend.trained


def test_search_returns_each_stored_item_first_with_its_exact_score_best_first(spec: str) -> None:
    partition, vectors = _partition(spec)

    # 4-bit PQ codes of tight clusters need more candidates reranked than the default
    hits = partition.search(vectors[:50], 5, partition.policy.resolve(SearchParams(refine=16)))

    assert [h[0][0] for h in hits] == [f"item-{i}" for i in range(50)]
    assert hits[3][0] == ("item-3", pytest.approx(1.0, abs=1e-4), LEAVES[0])
    for found in hits:
        scores = [score for _, score, _ in found]
        assert scores == sorted(scores, reverse=True) and len(found) == 5


def test_recall_at_10_against_exact_search_is_high_at_default_parameters(spec: str) -> None:
    partition, _ = _partition(spec)
    exact, _ = _partition("Flat")
    queries = _vectors(100, seed=5)

    found = _search(partition, queries, 10)
    truth = _search(exact, queries, 10)

    recall = np.mean(
        [len({h[0] for h in f} & {h[0] for h in t}) / 10 for f, t in zip(found, truth, strict=True)]
    )
    assert recall >= 0.9, f"{spec}: recall@10 {recall:.3f}"


def test_fetch_returns_the_exact_stored_vector_whatever_the_spec(spec: str) -> None:
    partition, vectors = _partition(spec)

    vector, leaf = partition.fetch("item-7")

    np.testing.assert_array_equal(vector, vectors[7])
    assert leaf == LEAVES[1]


def test_search_excludes_ids_and_still_returns_k(spec: str) -> None:
    partition, vectors = _partition(spec)

    (hits,) = _search(partition, vectors[3:4], 5, exclude={"item-3", "item-10", "elsewhere"})

    ids = [item_id for item_id, _, _ in hits]
    assert len(ids) == 5 and not {"item-3", "item-10"} & set(ids)


def test_search_asks_no_more_than_it_holds(spec: str) -> None:
    partition, vectors = _partition(spec, n=3)

    assert len(_search(partition, vectors[:1], 10)[0]) == 3
    assert _search(partition, vectors[:1], 10, exclude={"item-0", "item-1", "item-2"}) == [[]]


def test_upsert_replaces_an_existing_id(spec: str) -> None:
    partition, vectors = _partition(spec)
    moved = _vectors(1, seed=7)

    _put(partition, ["item-3"], moved, ["Apparel/Topwear/Polo"])

    assert len(partition) == N and partition.rows.dead == 1
    vector, leaf = partition.fetch("item-3")
    np.testing.assert_array_equal(vector, moved[0])
    assert leaf == "Apparel/Topwear/Polo"
    assert _search(partition, moved, 1)[0][0][0] == "item-3"
    assert "item-3" not in [i for i, _, _ in _search(partition, vectors[3:4], 3)[0]]


def test_upsert_of_a_repeated_id_keeps_the_last_row(spec: str) -> None:
    partition = Partition("202", "m1", DIM, _policy(spec))

    _put(partition, ["a", "a"], _vectors(2), ["Footwear/Shoes/Boots", "Footwear/Shoes/Heels"])

    assert len(partition) == 1 and partition.backend.count() == 1
    assert partition.fetch("a")[1] == "Footwear/Shoes/Heels"


def test_deleted_items_are_never_returned_and_search_still_returns_k(spec: str) -> None:
    partition, vectors = _partition(spec)
    gone = [f"item-{i}" for i in range(0, N, 2)]

    assert partition.delete([*gone, "item-0", "nope"]) == len(gone)

    assert len(partition) == N - len(gone) and "item-0" not in partition
    assert partition.rows.dead == len(gone)  # tombstones, counted apart from live vectors
    with pytest.raises(NotFound):
        partition.fetch("item-0")
    for hits in _search(partition, vectors[:40], 10):
        assert len(hits) == 10 and not {h[0] for h in hits} & set(gone)


def test_a_filter_is_applied_inside_the_index_so_k_come_back(spec: str) -> None:
    partition, vectors = _partition(spec)
    partition.policy = Policy(spec=spec, exact_below=10)  # no exact fallback: the selector
    wanted = Filter(leaf_ids=(LEAF_IDS[LEAVES[1]],), colours=("Red",))  # 1 item in 15

    hits = _search(partition, vectors[:20], 10, wanted=wanted)
    unfiltered = _search(partition, vectors[:20], 10)

    for found, plain in zip(hits, unfiltered, strict=True):
        assert len(found) == 10
        assert all(leaf == "Apparel/Topwear/Shirts" for _, _, leaf in found)
        assert all(
            partition.rows.value("colour", partition._row_of[i]) == "Red" for i, _, _ in found
        )
        kept = [h for h in plain if h[2] == "Apparel/Topwear/Shirts"]  # filtering afterwards
        assert len(kept) < 10


def test_a_leaf_filter_takes_the_leaves_it_names_by_node_id(spec: str) -> None:
    partition, vectors = _partition(spec)
    topwear = (2, LEAF_IDS[LEAVES[0]], LEAF_IDS[LEAVES[1]])  # a subtree: its node ids

    (hits,) = _search(partition, vectors[:1], 30, wanted=Filter(leaf_ids=topwear))

    assert len(hits) == 30 and {leaf for _, _, leaf in hits} <= set(LEAVES[:2])


def test_a_query_of_another_dimension_is_refused_naming_the_model_version(spec: str) -> None:
    partition, _ = _partition(spec)

    with pytest.raises(InvalidArgument, match=f"model version '{partition.model_version}'"):
        _search(partition, np.ones((1, DIM + 1), dtype=np.float32), 3)


def test_save_and_load_keeps_items_leaves_tombstones_and_answers(spec: str, tmp_path: Path) -> None:
    partition, vectors = _partition(spec)
    partition.delete(["item-0"])
    partition.save(tmp_path / "part")

    loaded = Partition.load(tmp_path / "part", partition.policy)
    _put(loaded, ["new"], _vectors(1, seed=9), [LEAVES[0]])

    assert (loaded.name, loaded.model_version, loaded.dim, loaded.spec) == (
        "102",
        "m1",
        DIM,
        spec,
    )
    assert len(loaded) == N and "item-0" not in loaded and loaded.rows.dead == 1
    assert _search(loaded, vectors[4:5], 3) == _search(partition, vectors[4:5], 3)
    assert loaded.fetch("item-7")[1] == LEAVES[1]
    assert _search(loaded, _vectors(1, seed=9), 1)[0][0][0] == "new"


def test_a_rebuild_trains_the_spec_and_keeps_writes_made_while_it_built(spec: str) -> None:
    partition = Partition("102", "m1", DIM, _policy(spec))
    vectors = _vectors(N)
    for start in range(0, N, 100):  # small writes: no training on any of them
        _put(
            partition,
            [f"item-{i}" for i in range(start, start + 100)],
            vectors[start : start + 100],
            [LEAVES[0]] * 100,
        )
    assert partition.spec == ("Flat" if training_size(spec, DIM) > 100 else spec)
    due = partition.due()
    assert due == ("" if partition.spec == spec else spec)
    if not due:
        return

    rebuild = partition.begin(due)
    assert rebuild.build(threading.Event())
    partition.delete(["item-1"])  # meanwhile: a delete, a replacement and a new item
    _put(partition, ["item-2", "late"], vectors[[5, 6]], [LEAVES[1]] * 2)
    partition.install(rebuild)

    assert partition.spec == spec and partition.due() == ""
    assert len(partition) == N and "item-1" not in partition
    assert partition.rows.dead == 2  # item-1 and item-2's first row: tombstones made meanwhile
    assert partition.fetch("item-2")[1] == LEAVES[1]
    ids = [h[0][0] for h in _search(partition, vectors[[3, 6]], 1)]
    assert ids[0] == "item-3" and ids[1] in {"item-6", "late"}


def test_compaction_is_due_past_the_share_of_tombstones_and_drops_them(spec: str) -> None:
    partition, vectors = _partition(spec)
    partition.delete([f"item-{i}" for i in range(150)])
    assert partition.due() == ""  # 15% < 20%
    partition.delete([f"item-{i}" for i in range(150, 250)])
    assert partition.due() == spec

    rebuild = partition.begin(spec)
    rebuild.build(threading.Event())
    partition.install(rebuild)

    assert partition.rows.dead == 0 and len(partition.rows) == len(partition) == N - 250
    assert partition.backend.count() == N - 250
    assert _search(partition, vectors[300:301], 1)[0][0][0] == "item-300"


def test_search_knobs_are_checked_against_their_bounds() -> None:
    policy = Policy(bounds=SearchParams(ef_search=100, nprobe=10, refine=8.0))

    assert policy.resolve(SearchParams(ef_search=50)) == SearchParams(50, 32, 4.0)
    for bad in (SearchParams(ef_search=101), SearchParams(nprobe=-1), SearchParams(refine=9)):
        with pytest.raises(InvalidArgument, match="outside"):
            policy.resolve(bad)


def test_the_policy_picks_exact_search_below_its_threshold_and_fills_spec_templates() -> None:
    policy = Policy(exact_below=1000, ann_spec="IVF{nlist},PQ{m}")

    assert policy.spec_for(999, 160) == "Flat"
    assert policy.spec_for(1_000_000, 160) == "IVF4096,PQ40"
    assert Policy(spec="HNSW32").spec_for(5, 160) == "HNSW32"


def test_formula_and_exactness_of_specs() -> None:
    assert bytes_per_vector("Flat", 100) == 400
    assert bytes_per_vector("IVF1024,PQ32", 128) == 40
    assert bytes_per_vector("PCA64,HNSW32", 128) == pytest.approx(256 + 4 * (64 + 32 / 31) + 12)
    assert is_exact("HNSW32") and is_exact("IVF64,Flat")
    assert not is_exact("IVF64,PQ8") and not is_exact("PCA8,HNSW16")


def test_make_backend_refuses_specs_faiss_cannot_build_and_bad_dimensions() -> None:
    with pytest.raises(InvalidArgument, match="cannot build index spec 'Annoy'"):
        make_backend("Annoy", DIM)
    with pytest.raises(InvalidArgument, match="positive"):
        make_backend("Flat", 0)


@pytest.mark.gpu
@pytest.mark.skipif(faiss.get_num_gpus() == 0, reason="faiss sees no GPU")
def test_a_backend_searches_on_the_gpu_and_follows_writes() -> None:
    backend = make_backend("IVF16,Flat", DIM)
    vectors = _vectors(N)
    backend.train(vectors)
    backend.add(vectors[:500])
    assert backend.device().startswith("GPU")
    assert backend.search(vectors[:1], 1, DEFAULTS, None)[1][0, 0] == 0

    backend.add(vectors[500:])

    assert backend.search(vectors[600:601], 1, SearchParams(nprobe=16), None)[1][0, 0] == 600


def test_a_partition_switches_spec_as_it_grows_and_back_only_well_below_the_threshold() -> None:
    partition = Partition("102", "m1", DIM, Policy(exact_below=100, ann_spec="HNSW16"))
    vectors = _vectors(150)
    for start in range(0, 150, 50):
        ids = [f"item-{i}" for i in range(start, start + 50)]
        _put(partition, ids, vectors[start : start + 50], [LEAVES[0]] * 50)
    assert (partition.spec, partition.due()) == ("Flat", "HNSW16")
    rebuild = partition.begin("HNSW16")
    rebuild.build(threading.Event())
    partition.install(rebuild)

    partition.delete([f"item-{i}" for i in range(90)])  # 60 left: twice that still calls HNSW
    rebuild = partition.begin(partition.due())  # compaction only (60% tombstones)
    rebuild.build(threading.Event())
    partition.install(rebuild)
    assert (partition.spec, partition.due()) == ("HNSW16", "")

    partition.delete([f"item-{i}" for i in range(90, 110)])  # 40 left
    assert partition.due() == "Flat"


def test_a_filter_sees_the_writes_made_since_it_was_last_used(spec: str) -> None:
    partition, vectors = _partition(spec)
    wanted = Filter(colours=("Gold",))
    assert _search(partition, vectors[:1], 5, wanted=wanted) == [[]]

    partition.upsert(
        [_state("gold-1", LEAVES[0], "Gold"), _state("gold-2", LEAVES[1], "Gold")], vectors[:2]
    )
    found = _search(partition, vectors[:1], 5, wanted=wanted)
    partition.delete(["gold-1"])
    after = _search(partition, vectors[:1], 5, wanted=wanted)

    assert [h[0] for h in found[0]] == ["gold-1", "gold-2"]
    assert [h[0] for h in after[0]] == ["gold-2"]


def test_a_spec_faiss_cannot_build_at_the_partitions_width_searches_exactly() -> None:
    partition, vectors = _partition("IVF16,PQ5")  # 5 codes do not divide 16 dimensions

    assert (partition.spec, partition.due()) == ("Flat", "")
    assert _search(partition, vectors[:1], 1)[0][0][0] == "item-0"
