"""The ways in: one folder per front end, around what they share.

* ``msg/``: the seed API, ``POST <base>[/<recipient>…]``;
* ``hooks/``: signed webhooks, ``POST /hooks/NAME``;
* ``ntfy/``: ntfy's publish API at the root of the listener.

What every front shares sits beside them: the message fields and their checks
(``message_request``, ``fields``), a tool's payload rendered by a template
(``templated``: ``?template=NAME`` on ``/msg`` and every webhook), and delivering a
request's messages through the relay and answering (``delivery``).

Importing this package registers the fronts' configuration sections (ntfy's
``[topics]``): whoever loads a configuration file imports it first (``cli``, ``service``).
"""

from __future__ import annotations

from xmpp_post.fronts import ntfy  # noqa: F401  (its [topics] section)
