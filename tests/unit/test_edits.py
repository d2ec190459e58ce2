"""Edits planned on the tree in memory: what each changes, and what each refuses."""

import pytest

from common.errors import FailedPrecondition, InvalidArgument, NotFound
from taxonomy_svc import edits, ops
from taxonomy_svc.edits import ItemMove, Suggested
from taxonomy_svc.ops import Rule
from taxonomy_svc.tree import Tree
from tests.fake_facts import FakeFacts

TSHIRTS = "Apparel/Topwear/Tshirts"
SHIRTS = "Apparel/Topwear/Shirts"
JEANS = "Apparel/Bottomwear/Jeans"
WALLETS = "Accessories/Wallets/Wallets"
BAG_WALLETS = "Accessories/Bags/Wallets"
GIFTS = "Free Items/Free Gifts/Free Gifts"


@pytest.fixture
def tree() -> Tree:
    return Tree.from_paths([TSHIRTS, SHIRTS, JEANS, WALLETS, BAG_WALLETS, GIFTS])


@pytest.fixture
def facts(tree: Tree) -> FakeFacts:
    leaves = {
        "tee": TSHIRTS,
        "shirt": SHIRTS,
        "w1": WALLETS,
        "w2": BAG_WALLETS,
        "g-watch": GIFTS,
        "g-wallet": GIFTS,
        "g-saree": GIFTS,
    }
    titles = {"g-watch": "Titan Men Watch", "g-wallet": "Leather Wallet", "g-saree": "Silk Saree"}
    return FakeFacts(tree, leaves, titles)


def test_rename_keeps_the_id_and_changes_every_path_beneath(tree: Tree, facts: FakeFacts) -> None:
    topwear = tree.id_of("Apparel/Topwear")
    plan = edits.plan(ops.Rename("Apparel/Topwear", "Tops"), tree, facts)
    assert list(plan.nodes) == [topwear]  # one node row, not the subtree
    assert plan.tree.id_of("Apparel/Tops/Tshirts") == tree.id_of(TSHIRTS)
    assert plan.moves == []


def test_move_rewrites_one_node_and_no_item(tree: Tree, facts: FakeFacts) -> None:
    plan = edits.plan(ops.MoveNode("Apparel/Topwear", "Accessories"), tree, facts)
    assert plan.tree.contains("Accessories/Topwear/Tshirts")
    assert len(plan.nodes) == 1 and plan.moves == []


def test_a_subtree_cannot_move_under_itself(tree: Tree, facts: FakeFacts) -> None:
    with pytest.raises(FailedPrecondition, match="under itself"):
        edits.plan(ops.MoveNode("Apparel", "Apparel/Topwear"), tree, facts)


def test_sibling_names_stay_unique(tree: Tree, facts: FakeFacts) -> None:
    with pytest.raises(FailedPrecondition, match="sibling"):
        edits.plan(ops.Rename("Apparel/Topwear/Shirts", "tshirts"), tree, facts)
    with pytest.raises(FailedPrecondition, match="sibling"):
        edits.plan(ops.AddNode("Apparel", "Topwear"), tree, facts)


def test_a_leaf_holding_items_cannot_get_children(tree: Tree, facts: FakeFacts) -> None:
    with pytest.raises(FailedPrecondition, match="without being a leaf"):
        edits.plan(ops.AddNode(TSHIRTS, "V-neck"), tree, facts)


def test_merge_moves_items_and_archives_the_node(tree: Tree, facts: FakeFacts) -> None:
    plan = edits.plan(ops.Merge(BAG_WALLETS, WALLETS), tree, facts)
    old, target = tree.id_of(BAG_WALLETS), tree.id_of(WALLETS)
    assert plan.moves == [ItemMove("w2", old, target)]
    assert plan.tree.node(old).archived and plan.tree.node(old).replaced_by == target
    assert plan.tree.resolve_path(BAG_WALLETS) == target  # the old path still resolves


def test_merge_refuses_children_whose_names_clash(tree: Tree, facts: FakeFacts) -> None:
    with pytest.raises(FailedPrecondition, match="sibling"):
        edits.plan(ops.Merge("Accessories/Bags", "Accessories/Wallets"), tree, facts)


def test_merge_takes_the_children_along(tree: Tree, facts: FakeFacts) -> None:
    plan = edits.plan(ops.Merge("Apparel/Bottomwear", "Apparel/Topwear"), tree, facts)
    assert plan.tree.contains("Apparel/Topwear/Jeans")
    assert not plan.tree.contains("Apparel/Bottomwear")


def test_reassign_sends_items_by_title_and_the_rest_elsewhere(tree: Tree, facts: FakeFacts) -> None:
    op = ops.Reassign(
        GIFTS,
        (
            ops.Target(WALLETS, Rule("title", ("wallet",))),
            ops.Target(SHIRTS, Rule("title", ("watch",))),
        ),
        rest=TSHIRTS,
    )
    plan = edits.plan(op, tree, facts)
    moved = {m.item_id: plan.tree.path_of(m.target) for m in plan.moves}
    assert moved == {"g-wallet": WALLETS, "g-watch": SHIRTS, "g-saree": TSHIRTS}


def test_reassign_without_rest_refuses_an_unmatched_item(tree: Tree, facts: FakeFacts) -> None:
    op = ops.Reassign(GIFTS, (ops.Target(WALLETS, Rule("title", ("wallet",))),))
    with pytest.raises(FailedPrecondition, match="g-saree"):
        edits.plan(op, tree, facts)


def test_split_makes_children_and_moves_items_by_rule(tree: Tree, facts: FakeFacts) -> None:
    op = ops.Split(GIFTS, (ops.SplitChild("Watches", Rule("title", ("watch",))),), rest="Other")
    plan = edits.plan(op, tree, facts)
    moved = {m.item_id: plan.tree.path_of(m.target) for m in plan.moves}
    assert moved == {
        "g-watch": f"{GIFTS}/Watches",
        "g-wallet": f"{GIFTS}/Other",
        "g-saree": f"{GIFTS}/Other",
    }
    assert not plan.tree.is_leaf(GIFTS)


def test_retire_needs_a_destination_for_its_items(tree: Tree, facts: FakeFacts) -> None:
    with pytest.raises(FailedPrecondition, match="items_to"):
        edits.plan(ops.Retire("Free Items"), tree, facts)
    plan = edits.plan(ops.Retire("Free Items", TSHIRTS), tree, facts)
    assert {m.item_id for m in plan.moves} == {"g-watch", "g-wallet", "g-saree"}
    assert not plan.tree.contains("Free Items")
    assert plan.tree.resolve_path(GIFTS) == tree.id_of(TSHIRTS)


def test_related_links_join_different_branches_only(tree: Tree, facts: FakeFacts) -> None:
    plan = edits.plan(ops.Relate(TSHIRTS, WALLETS), tree, facts)
    assert plan.tree.related_to(tree.id_of(TSHIRTS)) == [tree.id_of(WALLETS)]
    with pytest.raises(FailedPrecondition, match="different branches"):
        edits.plan(ops.Relate("Apparel", TSHIRTS), tree, facts)


def test_revert_restores_nodes_and_items(tree: Tree, facts: FakeFacts) -> None:
    merged = facts.commit(edits.plan(ops.Merge(BAG_WALLETS, WALLETS), tree, facts), 2)
    reverted = edits.plan(ops.Revert(2), merged, facts)
    assert reverted.tree.path_of(tree.id_of(BAG_WALLETS)) == BAG_WALLETS
    assert reverted.tree.is_active(tree.id_of(BAG_WALLETS))
    assert [(m.item_id, reverted.tree.path_of(m.target)) for m in reverted.moves] == [
        ("w2", BAG_WALLETS)
    ]


def test_revert_refuses_when_a_later_edit_changed_the_same_node(
    tree: Tree, facts: FakeFacts
) -> None:
    renamed = facts.commit(edits.plan(ops.Rename("Apparel/Topwear", "Tops"), tree, facts), 2)
    again = facts.commit(edits.plan(ops.Rename("Apparel/Tops", "Upper"), renamed, facts), 3)
    with pytest.raises(FailedPrecondition, match="changed after version 2"):
        edits.plan(ops.Revert(2), again, facts)


def test_revert_of_an_addition_archives_the_node(tree: Tree, facts: FakeFacts) -> None:
    added = facts.commit(edits.plan(ops.AddNode("Apparel", "Kurtas"), tree, facts), 2)
    reverted = edits.plan(ops.Revert(2), added, facts)
    assert not reverted.tree.contains("Apparel/Kurtas")


def test_import_keeps_given_ids_and_refuses_a_contradiction(tree: Tree, facts: FakeFacts) -> None:
    plan = edits.plan(ops.Import("lines", "500 - Home\n501 - Home > Cushions\n"), tree, facts)
    assert plan.tree.id_of("Home/Cushions") == 501
    text = f"{tree.id_of('Apparel') + 1} - Apparel\n"
    with pytest.raises(FailedPrecondition, match="has id"):
        edits.plan(ops.Import("lines", text), tree, facts)


def test_accept_creates_the_proposed_leaf_and_moves_its_items(tree: Tree, facts: FakeFacts) -> None:
    facts.open.append(Suggested("Apparel/Topwear/Kurtas", "new_path", ["tee"]))
    plan = edits.plan(ops.Accept("Apparel/Topwear/Kurtas"), tree, facts)
    assert [(m.item_id, plan.tree.path_of(m.target)) for m in plan.moves] == [
        ("tee", "Apparel/Topwear/Kurtas")
    ]
    assert plan.suggestion == ("Apparel/Topwear/Kurtas", "accepted")
    with pytest.raises(NotFound):
        edits.plan(ops.Accept("Apparel/Nothing"), tree, facts)


@pytest.mark.parametrize("name", ["", "  ", "a/b", "a > b"])
def test_bad_names_are_refused(tree: Tree, facts: FakeFacts, name: str) -> None:
    with pytest.raises(InvalidArgument):
        edits.plan(ops.AddNode("Apparel", name), tree, facts)


def test_an_unknown_node_is_not_found(tree: Tree, facts: FakeFacts) -> None:
    with pytest.raises(NotFound):
        edits.plan(ops.Rename("Apparel/Nothing", "x"), tree, facts)


def test_paths_from_before_a_rename_or_move_still_resolve(tree: Tree, facts: FakeFacts) -> None:
    renamed = facts.commit(edits.plan(ops.Rename("Apparel/Topwear", "Tops"), tree, facts), 2)
    moved = edits.plan(ops.MoveNode("Apparel/Tops", "Accessories"), renamed, facts).tree
    for old in (TSHIRTS, "Apparel/Tops/Tshirts", "Apparel/Topwear"):
        assert moved.path_of(moved.resolve_path(old)).startswith("Accessories/Tops")
    assert not moved.contains(TSHIRTS)  # resolving is not being there
