"""The page, its files and what it may offer, with the headers that keep them safe.

The files are read once from the package (``static/``) and served as they are:
``index.html`` at ``<base>/``, the others at ``<base>/static/NAME`` with an ``ETag``
(a client that has the file gets 304). ``GET /`` redirects to the page when the base
path is another and ntfy is off (ntfy's JSON publishing has ``/``).
``GET /web/capabilities`` says which optional fields the send form may show
(``send_features``) and whether the status view is configured.

Every answer here carries ``SECURITY_HEADERS``: a Content Security Policy that allows
scripts, styles, images and requests from the gateway's own origin only (no inline
script or style, no plugins, no forms posted anywhere, no framing), ``nosniff``, and no
referrer.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from xmpp_post.config import Config
from xmpp_post.errors import NotFound
from xmpp_post.http.context import CONFIG
from xmpp_post.model import MESSAGE_TYPES

STATIC = Path(__file__).parent / "static"
PAGE = "index.html"
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css",
                 ".svg": "image/svg+xml"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",  # frame-ancestors, for browsers that predate it
    "Cross-Origin-Opener-Policy": "same-origin",
}
CAPABILITIES = "/web/capabilities"


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


@functools.cache
def assets() -> dict[str, Asset]:
    """The page's files by name, read once."""
    found: dict[str, Asset] = {}
    for path in sorted(STATIC.iterdir()):
        kind = CONTENT_TYPES.get(path.suffix)
        if kind is None or not path.is_file():
            continue
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        found[path.name] = Asset(body, kind, etag)
    return found


def page_path(config: Config) -> str:
    """Where the page is: the base path, with a trailing slash."""
    return config.base_path.rstrip("/") + "/"


def redirects_root(config: Config) -> bool:
    """Whether ``GET /`` leads to the page: when the page is elsewhere and ``/`` is not
    ntfy's (whose ``/`` answers every method, and says so in ``Allow``)."""
    return page_path(config) != "/" and not config.ntfy


def send_features(config: Config) -> dict[str, bool]:
    """The send form's optional fields this gateway supports. ``files`` (file parts of a
    multipart request) and ``encrypt`` (the ``encrypt`` field) come with the work that
    adds them, each with a setting of its own (``max_file_size``, ``encrypt``): the page
    shows a field once its setting exists."""
    return {"files": hasattr(config, "max_file_size"), "encrypt": hasattr(config, "encrypt")}


def secured(response: web.Response) -> web.Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def _serve(request: web.Request, asset: Asset) -> web.Response:
    headers = {"ETag": asset.etag, "Cache-Control": "no-cache"}
    if asset.etag in request.headers.get("If-None-Match", ""):
        return secured(web.Response(status=304, headers=headers))
    charset = "utf-8" if asset.content_type != "image/svg+xml" else None
    return secured(web.Response(body=asset.body, content_type=asset.content_type,
                                charset=charset, headers=headers))


async def index(request: web.Request) -> web.Response:
    return _serve(request, assets()[PAGE])


async def static_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    asset = assets().get(name) if name != PAGE else None
    if asset is None:
        raise NotFound("no such file")
    return _serve(request, asset)


async def to_page(request: web.Request) -> web.Response:
    location = page_path(request.app[CONFIG])
    return secured(web.Response(status=302, headers={"Location": location}))


async def capabilities(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    return secured(web.json_response({
        "base_path": config.base_path,
        "types": list(MESSAGE_TYPES),
        "send": send_features(config),
        "status": bool(config.admin),
    }))


def add_routes(app: web.Application, config: Config) -> None:
    assets()  # read now, not in the event loop
    where = page_path(config)
    app.router.add_get(where, index)
    app.router.add_get(where + "static/{name}", static_file)
    if redirects_root(config):
        app.router.add_get("/", to_page)
    app.router.add_get(CAPABILITIES, capabilities)
