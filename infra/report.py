"""An HTML page of query images beside their neighbours, self-contained (images inline)."""

import base64
import html
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Tile:
    """One picture on the page: the image, its caption, and whether it matches the query."""

    image: bytes
    caption: str
    match: bool | None = None  # None for the query itself


def write_page(
    path: Path, title: str, rows: list[tuple[str, list[Tile]]], preamble: str = ""
) -> Path:
    """Writes one row per query: a heading, then the query tile and its neighbours' tiles.

    `preamble` is HTML (already escaped) placed between the title and the rows.
    """
    body = "\n".join(_row(heading, tiles) for heading, tiles in rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_PAGE.format(title=html.escape(title), preamble=preamble, body=body))
    return path


def _row(heading: str, tiles: list[Tile]) -> str:
    cells = "".join(_tile(tile) for tile in tiles)
    return f"<h2>{html.escape(heading)}</h2><div class=row>{cells}</div>"


def _tile(tile: Tile) -> str:
    kind = "query" if tile.match is None else "same" if tile.match else "other"
    data = base64.b64encode(tile.image).decode()
    caption = html.escape(tile.caption).replace("\n", "<br>")
    image = f'<img src="data:image/jpeg;base64,{data}">'
    return f"<figure class={kind}>{image}<figcaption>{caption}</figcaption></figure>"


_PAGE = """<!doctype html>
<html><head><meta charset=utf-8><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
.row {{ display: flex; gap: 6px; flex-wrap: wrap; }}
figure {{ margin: 0; width: 100px; border: 3px solid #ccc; padding: 3px; font-size: 10px;
          overflow-wrap: anywhere; }}
figure img {{ width: 94px; height: 125px; object-fit: contain; }}
.query {{ border-color: #333; background: #eee; }}
.same {{ border-color: #2a2; }}
.other {{ border-color: #d33; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 3px 10px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
</style></head>
<body><h1>{title}</h1>
{preamble}
<p>Each row: the query (grey), then its neighbours in rank order; green shares the query's
leaf category, red does not.</p>
{body}
</body></html>
"""
