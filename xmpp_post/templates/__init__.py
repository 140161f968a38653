"""Webhook templates: a tool's own payload turned into one message.

``POST /msg/<recipient>?template=NAME`` carries what the tool sends anyway (JSON, or a
form whose only field ``payload`` holds the JSON); template NAME turns it into the text
of one message. This package is that engine, with no HTTP or XMPP in it::

    templates = TemplateSet.load(Path("/etc/xmpp-post/templates"))   # at start
    payload = parse_payload(request.content_type, body)                # 400 / 415
    rendered = await templates.render(name, payload, request.headers, request.query)
    templates.reply(name)   # "json", "slack" or "discord": the answer a tool expects

Built-in templates (``xmpp_post/templates/builtin/``): ``alertmanager``, ``grafana``,
``github``, ``gitlab``, ``gitea`` (Gitea and Forgejo), ``slack`` (Slack and Mattermost
incoming webhooks), ``discord``. They are written exactly like your own, so copy one to
start.

Writing a template
------------------
Each ``NAME.j2`` in the ``template_dir`` folder is template NAME (letters, digits, ``-``
and ``_``); one named like a built-in replaces it. Files whose name starts with ``_``
are partials to ``{% import %}`` or ``{% include %}``, not templates; other files are
ignored. Templates come only from that folder and the built-in one, never from a
request. A file that does not compile stops the gateway at start with its name and line.

A comment that opens the file describes it; ``reply:`` picks the answer a sending tool
gets on success (``json``, the default, ``slack`` or ``discord``)::

    {#
    Deploy notifications from our CI.
    reply: json
    #}

A template sees:

- ``payload``: the parsed JSON;
- ``headers``: the request's headers, names in lower case, without ``Authorization``,
  ``Proxy-Authorization``, ``Cookie`` and ``X-Gitlab-Token``;
- ``query``: the query parameters, as a dict, without those that carry a secret
  (``templates.tool_payload.HIDDEN_QUERY``: ``auth``, ``room_password``, ``token``, …);
- ``set_subject(text)``: gives the message a subject. Careful: in a group chat a
  subject changes the room's topic, so the built-ins never set one. A ``subject`` query
  parameter wins over it;
- ``skip()``: stops rendering; nothing is sent, and the request still succeeds
  (GitHub's ``ping`` does this).

Use them with ``{% do %}``: ``{% do set_subject("Deploy " ~ payload.version) %}``,
``{% if payload.zen %}{% do skip() %}{% endif %}``. ``{% break %}`` and
``{% continue %}`` work in loops.

Missing values are forgiving: ``payload.a.b.c`` is empty when any part is missing, and
``null`` prints as nothing. ``x.name`` is the member ``name`` when ``x`` has one (so
``alert.values`` is Grafana's values); iterate over a mapping with ``x|items``.

The text is plain, styled with XEP-0393 (``*bold*``, ``_italic_``, ```code```,
``> quote``), which phones show well. Put what happened on the first line. After
rendering, trailing spaces are removed, blank lines collapsed to one, characters XML
cannot carry dropped. An empty result is refused (422 ``missing_body``) unless the
template called ``skip()``. The filters for all this are listed in
:mod:`xmpp_post.templates.filters`. The built-ins cap their lists and cut the whole
message at 20,000 characters (``{% filter shorten(20000) %}``), which fits any XMPP
server's stanza limit whatever the payload; a message too large for the server is
refused when it is sent.

Limits
------
Templates run in Jinja2's ``ImmutableSandboxedEnvironment`` (see
:mod:`xmpp_post.templates.sandbox` and :mod:`xmpp_post.templates.limits`): no Python
internals, no ``str.format``, no changes
to lists or dicts. A render has :attr:`Limits.seconds` (2 s) and
:attr:`Limits.max_output` characters (256 KiB); ``range()`` has at most 10,000 items,
a render at most 100,000 loop iterations, no value it builds may pass 256 KiB, and its
filters and methods together may make at most 32 MiB. Each limit is checked before the
work it bounds (:mod:`xmpp_post.templates.bounded`), and nothing is computed while a
template loads.
Going over a limit, reaching for internals, or any other failure while rendering is
422 ``template_error``, naming the template and line.
"""

from __future__ import annotations

from xmpp_post.templates.engine import (
    BUILTIN_DIR,
    Limits,
    Rendered,
    Reply,
    TemplateInfo,
    TemplateSet,
)
from xmpp_post.templates.tool_payload import parse_payload, visible_headers

# The query parameter that names the template a request's body is for (``?template=``):
# such a body is a tool's own payload, and may be as large as ``max_template_body``.
TEMPLATE_PARAMETER = "template"

__all__ = [
    "BUILTIN_DIR",
    "TEMPLATE_PARAMETER",
    "Limits",
    "Rendered",
    "Reply",
    "TemplateInfo",
    "TemplateSet",
    "parse_payload",
    "visible_headers",
]
