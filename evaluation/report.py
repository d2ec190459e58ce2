"""The evaluation's outputs: evaluation.json, a text table, evaluation.html (plot and grid)."""

import base64
import html
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from catalog.items import Catalog, open_catalog
from evaluation.features import figure_name
from infra.report import Tile, write_page

JSON_FILE = "evaluation.json"
HTML_FILE = "evaluation.html"
NAMES = {
    "colour_histogram": "colour histogram 8x8x8",
    "raw_pixels": "raw pixels 16x12",
}
COLUMNS = ("queries", "P@10 leaf", "P@10 leaf+colour", "mAP@10 leaf", "top-1 leaf")
CHANGED = ("own_at_1", "own_at_10", "p_at_10_leaf", "p_at_10_leaf_colour")
CHANGED_COLUMNS = ("queries", "own item @1", "own item in top 10", "P@10 leaf", "P@10 leaf+colour")
CLEAN_COLUMNS = ("clean P@10 leaf", "clean P@10 leaf+colour")
Table = list[list[str]]


def write_json(result: dict[str, Any], out: Path) -> Path:
    """Writes all the figures to `<out>/evaluation.json`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / JSON_FILE).write_text(json.dumps(result, indent=2) + "\n")
    return out / JSON_FILE


def tables(result: dict[str, Any]) -> tuple[Table, Table]:
    """The figures as rows of text: the model's variants beside the baselines, then the first
    variant per master category."""
    embeddings = [
        _row(NAMES.get(name, name), figures) for name, figures in result["figures"].items()
    ]
    masters = [_row(name, figures) for name, figures in result["per_master"].items()]
    return embeddings, masters


def changed_tables(result: dict[str, Any]) -> tuple[str, list[tuple[list[str], Table]]]:
    """What the changed photos are, then their figures as two tables of text: every embedding
    over all of them beside its clean figures, and the first variant per kind of change."""
    changed, clean, first = result["changed"], result["figures"], _first(result)
    embeddings = [
        [
            NAMES.get(name, name),
            *changed_cells(rows["all"]),
            f"{clean[name]['p_at_10_leaf']:.3f}",
            f"{clean[name]['p_at_10_leaf_colour']:.3f}",
        ]
        for name, rows in changed["figures"].items()
    ]
    kinds = [[group, *changed_cells(row)] for group, row in changed["figures"][first].items()]
    about = (
        f"Held-out photos changed as a shopper's differ (seed {changed['seed']}), searched "
        "against the whole catalog, own item included; clean: the catalog's own photos, "
        "left out."
    )
    return about, [
        (["embedding", *CHANGED_COLUMNS, *CLEAN_COLUMNS], embeddings),
        ([f"{first}, per change", *CHANGED_COLUMNS], kinds),
    ]


def changed_cells(row: dict[str, Any]) -> list[str]:
    """A `robustness.score` row as cells: queries, own item at 1 and 10, P@10 leaf (+colour)."""
    return [str(row["queries"]), *(f"{row[key]:.3f}" for key in CHANGED)]


def text(result: dict[str, Any]) -> str:
    """A compact plain-text summary for the terminal."""
    counts, first = result["counts"], _first(result)
    embeddings, masters = tables(result)
    lines = [
        _headline(result),
        text_table(["embedding", *COLUMNS], embeddings),
        *_comparison_lines(result),
        "",
        text_table([f"{first}, per masterCategory", *COLUMNS], masters),
        f"top-1 over {result['figures'][first]['top1_queries']} queries; "
        f"{result['figures'][first]['top1_excluded']} excluded "
        f"(leaf not among the model's {counts['model_leaves']})",
    ]
    if "changed" in result:
        about, changed = changed_tables(result)
        lines += ["", about, *(text_table(heading, rows) + "\n" for heading, rows in changed)]
    return "\n".join(lines)


def write_html(result: dict[str, Any], out: Path) -> Path:
    """Writes `<out>/evaluation.html`: the tables, the P@k plot and the worst queries' grid."""
    embeddings, masters = tables(result)
    first = _first(result)
    preamble = "\n".join(
        [
            f"<p>{html.escape(_headline(result))}</p>",
            _html_table(["embedding", *COLUMNS], embeddings),
            *(f"<p>{html.escape(line)}</p>" for line in _comparison_lines(result)),
            _html_table([f"{first}, per masterCategory", *COLUMNS], masters),
            f'<img alt="precision at k" src="data:image/png;base64,{_plot(result)}">',
            *_changed_html(result),
            f"<h2>Worst queries of {html.escape(first)} (lowest P@10 leaf), then the first "
            "changed photo of each kind</h2>",
        ]
    )
    with open_catalog(result["catalog"]) as catalog:
        rows = [
            (
                f"{query['id']} {query['leaf']}: P@10 leaf {query['p_at_10_leaf']:.1f}",
                _tiles(query, catalog.image_bytes),
            )
            for query in result["worst"]
        ]
        rows += [
            (
                f"{example['id']} changed: {', '.join(example['changes'])}",
                _changed_tiles(example, catalog),
            )
            for example in result.get("changed", {}).get("examples", [])
        ]
    title = f"Evaluation of {result['model_version']} ({', '.join(result['variants'])})"
    return write_page(out / HTML_FILE, title, rows, preamble)


def _first(result: dict[str, Any]) -> str:
    """The figures' name of the variant the per-master rows and the worst queries come from."""
    return figure_name(result["variants"][0])


def _headline(result: dict[str, Any]) -> str:
    counts, seconds = result["counts"], result["seconds"]
    return (
        f"model {result['model_version']} ({', '.join(result['variants'])}) on "
        f"{result['catalog']}: {counts['queries']} held-out queries against "
        f"{counts['embedded']} items, {seconds['total']:.0f} s (embed {seconds['embed']:.0f} s, "
        f"search {seconds['search']:.0f} s)"
    )


def _comparison_lines(result: dict[str, Any]) -> list[str]:
    return [
        f"{name} over {compared['items']} items: P@10 leaf "
        f"{compared['p_at_10_leaf_difference']:+.4f}, mean cosine {compared['mean_cosine']:.4f}, "
        f"top leaf agrees {compared['top_leaf_agreement']:.3f}"
        for name, compared in result["comparisons"].items()
    ]


def _row(name: str, figures: dict[str, Any]) -> list[str]:
    scored = figures.get("top1_queries", 0)
    top1 = f"{figures['top1_leaf']:.3f} ({scored})" if scored else "-"
    return [
        name,
        str(figures["queries"]),
        f"{figures['p_at_10_leaf']:.3f}",
        f"{figures['p_at_10_leaf_colour']:.3f}",
        f"{figures['map_at_10_leaf']:.3f}",
        top1,
    ]


def text_table(header: list[str], rows: Table) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *rows]
    )


def _html_table(header: list[str], rows: Table) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _plot(result: dict[str, Any]) -> str:
    """The P@k curves of every embedding as a PNG, base64-encoded."""
    import matplotlib  # heavy: only when a report is written

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 4), dpi=100)
    for name, figures in result["figures"].items():
        k = range(1, len(figures["p_at_k_leaf"]) + 1)
        (line,) = axes.plot(k, figures["p_at_k_leaf"], label=f"{NAMES.get(name, name)}: leaf")
        axes.plot(
            k, figures["p_at_k_leaf_colour"], "--", color=line.get_color(), label="leaf + colour"
        )
    axes.set(xlabel="k", ylabel="precision@k", ylim=(0, 1), title="Held-out queries, exact search")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, ncol=3, loc="lower center")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    pyplot.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _changed_html(result: dict[str, Any]) -> list[str]:
    if "changed" not in result:
        return []
    about, changed = changed_tables(result)
    tables = [_html_table(heading, rows) for heading, rows in changed]
    return [f"<h2>Changed photos</h2><p>{html.escape(about)}</p>", *tables]


def _changed_tiles(example: dict[str, Any], catalog: Catalog) -> list[Tile]:
    """The changed photo, then its neighbours; a match is the own item or one of its leaf."""
    own = catalog.get(example["id"])
    tiles = [Tile(base64.b64decode(example["photo"]), f"changed {own.id}\n{own.leaf}")]
    for rank, item_id in enumerate(example["neighbours"], start=1):
        item = catalog.get(item_id)
        mark = " OWN ITEM" if item_id == own.id else ""
        caption = f"{rank}. {item_id}{mark}\n{item.leaf}\n{item.colour}"
        tiles.append(Tile(catalog.image_bytes(item_id), caption, item.leaf == own.leaf))
    return tiles


def _tiles(query: dict[str, Any], image: Callable[[str], bytes]) -> list[Tile]:
    tiles = [Tile(image(query["id"]), f"query {query['id']}\n{query['leaf']}\n{query['colour']}")]
    for rank, hit in enumerate(query["neighbours"], start=1):
        caption = f"{rank}. {hit['id']} ({hit['score']:.3f})\n{hit['leaf']}\n{hit['colour']}"
        tiles.append(Tile(image(hit["id"]), caption, hit["same_leaf"]))
    return tiles
