"""The tree as text: the public taxonomies' line format and JSON, both ways."""

import pytest

from catalog.items import open_catalog
from common import paths
from common.errors import InvalidArgument
from taxonomy_svc import edits, formats, ops
from taxonomy_svc.tree import Tree
from tests.fake_facts import FakeFacts
from tests.unit.test_catalog import FASHION_SMALL

GOOGLE_STYLE = """# Google_Product_Taxonomy_Version: 2021-09-21
1 - Animals & Pet Supplies
3237 - Animals & Pet Supplies > Live Animals
2 - Animals & Pet Supplies > Pet Supplies
3 - Animals & Pet Supplies > Pet Supplies > Bird Supplies
166 - Apparel & Accessories
"""


def _imported(text: str, fmt: str = "lines") -> Tree:
    empty = Tree([])
    return edits.plan(ops.Import(fmt, text), empty, FakeFacts(empty, {}, {})).tree


def test_the_line_format_keeps_ids_and_round_trips() -> None:
    tree = _imported(GOOGLE_STYLE)
    assert tree.id_of("Animals & Pet Supplies/Live Animals") == 3237
    body = GOOGLE_STYLE.split("\n", 1)[1]
    assert formats.export(tree, 1, "lines", with_ids=True) == body


def test_lines_without_ids_get_fresh_ones_and_missing_parents() -> None:
    tree = _imported("Apparel & Accessories > Clothing > Shirts\n")
    assert tree.nodes() == [
        "Apparel & Accessories",
        "Apparel & Accessories/Clothing",
        "Apparel & Accessories/Clothing/Shirts",
    ]


def test_json_round_trips_with_ids_and_related_links() -> None:
    tree = _imported(GOOGLE_STYLE)
    facts = FakeFacts(tree, {}, {})
    linked = edits.plan(
        ops.Relate("Animals & Pet Supplies/Live Animals", "Apparel & Accessories"), tree, facts
    ).tree
    text = formats.export(linked, 7, "json")
    again = _imported(text, "json")
    assert formats.export(again, 7, "json") == text


@pytest.mark.parametrize(("fmt", "text"), [("xml", ""), ("json", "{"), ("lines", "A >  > B")])
def test_bad_text_is_an_invalid_argument(fmt: str, text: str) -> None:
    with pytest.raises(InvalidArgument):
        formats.parse(fmt, text)


@pytest.mark.skipif(not FASHION_SMALL.is_dir(), reason="fashion-small is not beside the project")
def test_the_real_catalogs_tree_exports_the_lines_it_was_imported_from() -> None:
    with open_catalog(FASHION_SMALL) as catalog:
        leaves = {item.leaf for item in catalog.items}
    prefixes = {paths.join(*paths.split(leaf)[:d]) for leaf in leaves for d in (1, 2, 3)}
    lines = sorted(formats.LINE_SEP.join(paths.split(p)) for p in prefixes if p)
    ordered = sorted(lines, key=lambda line: line.split(formats.LINE_SEP))
    text = "".join(line + "\n" for line in ordered)
    tree = _imported(text)
    assert formats.export(tree, 1, "lines") == text
    numbered = formats.export(tree, 1, "lines", with_ids=True)
    assert formats.export(_imported(numbered), 1, "lines", with_ids=True) == numbered
