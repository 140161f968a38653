"""The web page: send a message, try a template on a payload, see the gateway's state.

``FRONT`` (``add_routes(app, config)`` and its OpenAPI part) is what ``service`` hands
the application. It serves:

* with ``web`` on (``--no-web`` turns it off): ``GET <base>/``, the page, and
  ``GET <base>/static/NAME``, its files (plain HTML, CSS and JavaScript shipped in the
  package: no build step, nothing from another site); ``GET /`` redirects to the page
  when the base path is another and ntfy is off. ``GET /web/capabilities`` tells the
  page what this gateway supports, and ``GET /web/status`` the gateway's state, for the
  admins (``admin``) only (``web_page``, ``web_status``);
* always, as API: ``GET /templates``, the templates with a sample payload for each
  built-in, and ``POST /templates/NAME/render``, what a template makes of a payload and
  the stanza it would send, sending nothing (``web_render``).

The page keeps the credentials typed into it in the tab's memory only and sends them in
the ``Authorization`` header (no cookies, so no cross-site request can use them); the
routes that need them are authenticated by the guards exactly like a send
(``context.SENDING``), and a password given with HTTP Basic is proven by a login to the
XMPP server before anything is rendered or shown. Every answer of the page's own routes
carries ``Content-Security-Policy`` (``'self'`` only, no inline script or style, no
framing) and ``X-Content-Type-Options: nosniff``; the page writes every value from the
server as text, never as HTML.
"""

from __future__ import annotations

from aiohttp import web

from xmpp_post.config import Config
from xmpp_post.fronts.web import web_openapi
from xmpp_post.fronts.web import web_page as page
from xmpp_post.fronts.web import web_render as render
from xmpp_post.fronts.web import web_status as status
from xmpp_post.http.context import Front


def add_routes(app: web.Application, config: Config) -> None:
    """Serve the web front on ``app``; call it before ntfy's routes (whose ``/`` answers
    every method)."""
    render.add_routes(app)
    if config.web:
        page.add_routes(app, config)
        status.add_routes(app, config)


FRONT = Front("web", add_routes, web_openapi.part)
