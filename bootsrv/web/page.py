"""The dashboard's files, served from the package (and so from the one-file binary): the
page, its script and style, and uPlot (from npm, pinned in static/package.json, MIT,
licence beside it). No outside assets: the appliance is often on a network with no
internet. The page reads /api/overview and /api/history every few seconds and calls
the same operations the CLI does (POST /api/<operation>)."""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).with_name("static")
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".LICENSE": "text/plain; charset=utf-8"}
# Only these files are served (never a path from the request): URL path -> file name.
ROUTES = {"/": "index.html", "/index.html": "index.html", "/static/dashboard.js": "dashboard.js",
          "/static/dashboard.css": "dashboard.css", "/static/uPlot.iife.min.js": "uPlot.iife.min.js",
          "/static/uPlot.min.css": "uPlot.min.css", "/static/uPlot.LICENSE": "uPlot.LICENSE"}


def load_assets() -> dict[str, tuple[str, bytes]]:
    """URL path -> (content type, bytes), read once when the web server is made."""
    files = {name: (_TYPES[Path(name).suffix], (STATIC / name).read_bytes()) for name in set(ROUTES.values())}
    return {path: files[name] for path, name in ROUTES.items()}
