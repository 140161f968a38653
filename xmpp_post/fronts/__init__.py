"""The ways in: one folder per front end, each with its routes and its OpenAPI, around
what they share.

* ``msg/``: the seed API, ``POST <base>[/<recipient>…]``;
* ``hooks/``: webhooks, ``POST /hooks/NAME`` (signed) and ``POST /hooks/xph_…``;
* ``web/``: the gateway's own web page, and the template and status endpoints behind it;
* ``ntfy/``: ntfy's publish API at the root of the listener.

What every front shares sits beside them: the message fields, their checks and their
OpenAPI schemas (``message_request``, ``fields``, ``message_openapi``), a tool's payload
rendered by a template (``templated``: ``?template=NAME`` on ``/msg``, the webhooks, the
web page's template trial), and delivering a request's messages through the relay and
answering (``delivery``).

Importing this package registers the fronts' configuration sections (ntfy's
``[topics]``): whoever loads a configuration file imports it first (``cli``, ``service``).
"""

from __future__ import annotations

from xmpp_post.fronts import ntfy  # noqa: F401  (its [topics] section)
