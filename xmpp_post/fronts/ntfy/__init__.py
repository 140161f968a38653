"""ntfy-compatible publishing: the pure core, free of any HTTP or XMPP library.

ntfy clients publish as they would to an ntfy server at the root of the listener:
``PUT|POST /`` with a JSON object, ``PUT|POST /<topic>`` with the message as the body and
the fields as headers or query parameters, or ``GET|POST /<topic>/publish`` (``/send``,
``/trigger``) with ``?message=``. Topic names are ``[-_A-Za-z0-9]{1,64}``; the gateway's
own paths are never topics. Credentials: HTTP Basic, or ntfy's ``?auth=`` (the whole
``Authorization`` value in base64, see ``auth_param.py``).

How an ntfy publication becomes an XMPP message (header aliases are case-insensitive and
work as query parameters too; a JSON member wins over a header, a header over the query):

| ntfy field (aliases) | in the XMPP message |
|---|---|
| topic (the path, or `topic` in JSON) | sent to the `[topics]` entry's JIDs, else to `<topic>@<sender's domain>` |
| `message` (`X-Message`, `Message`, `m`; or the body) | the text; none at all: `triggered` (ntfy's word) |
| `title` (`X-Title`, `Title`, `ti`, `t`) | the `<subject/>`, and the first line in bold: `*title*` |
| `tags` (`X-Tags`, `Tags`, `Tag`, `ta`) | ntfy's emoji for the tags it knows (`warning` ⚠️, `tada` 🎉, see `emoji.py`) before the title; other tags on a last line `Tags: a, b` |
| `priority` (`X-Priority`, `Priority`, `prio`, `p`) | 5, `max`, `urgent`: ‼️ before the title; 4, `high`: ❗; 1-3, `min`, `low`, `default`: nothing; anything else is 400 `invalid_priority` |
| `click` (`X-Click`, `Click`) | a line `🔗 <url>` |
| `actions` (`X-Actions`, `Actions`, `Action`; JSON array or ntfy's short format) | a line each: view `label: url`; http `label: POST url`; broadcast `label:` and a note that only ntfy's app can send it |
| `attach` (`X-Attach`, `Attach`, `a`) | the XEP-0066 out-of-band URL, and a line `📎 <name>: <url>` |
| `filename` (`X-Filename`, `Filename`, `file`, `f`) | the attachment's name (default: the URL's last segment); without `attach` the body is a file of that name |
| `markdown` (`X-Markdown`, `Markdown`, `md`: `1`, `yes`, `true`; or `Content-Type: text/markdown`) | the text as plain text with XEP-0393 styling: `**b**` → `*b*`, `*i*`/`_i_` → `_i_`, headings → a bold line, `[t](u)` → `t (u)`; code, lists and quotes stay (see `markdown.py`) |
| `icon` (`X-Icon`, `Icon`) | ignored (cosmetic); echoed in the reply when it is an http(s) URL |
| `encrypt` (`X-Encrypt`, `Encrypt`; the gateway's own) | `omemo`: end-to-end encrypted (docs/omemo.md), or `none`; default: the sender's (`--encrypt`, its account's, its token's) |
| `cache`, `firebase`, `unifiedpush` (`up`), `poll_id` | ignored: they only matter to an ntfy server |
| `delay` (`X-Delay`, `Delay`, `X-At`, `At`, `X-In`, `In`), `email` (`X-Email`, `X-E-Mail`, `Email`, `E-Mail`, `Mail`, `e`), `call` (`X-Call`, `Call`), `template` (`X-Template`, `Template`, `tpl`) | refused, never dropped: 400 `unsupported_field` |
| a body over `max_text` bytes (ntfy: 4096), or not UTF-8 text | a file, as ntfy makes it: uploaded (XEP-0363) and sent as its URL (``Publication.file``) |
| any text XML cannot carry (control characters) | 400 `invalid_character` |

RFC 2047 encoded words (``=?UTF-8?B?…?=``) are decoded in every header. The answer is
ntfy's message object (``reply``), or an error with ntfy's ``http`` and ``code`` members
added to the gateway's shape (``error_body``).
"""  # noqa: E501

from __future__ import annotations

from xmpp_post.fronts.ntfy import ntfy_config  # noqa: F401  (registers [topics])
from xmpp_post.fronts.ntfy.actions import Action, parse_actions
from xmpp_post.fronts.ntfy.auth_param import auth_from_query, decode_auth_param
from xmpp_post.fronts.ntfy.compose import MessageParts, compose
from xmpp_post.fronts.ntfy.emoji import EMOJI, emoji_for
from xmpp_post.fronts.ntfy.markdown import to_styled_text
from xmpp_post.fronts.ntfy.publish import (
    DEFAULT_MAX_TEXT,
    Publication,
    is_topic,
    is_topic_path,
    parse_publish,
)
from xmpp_post.fronts.ntfy.reply import error_body, new_id, reply
from xmpp_post.fronts.ntfy.topics import (
    GATEWAY_PATHS,
    recipients_for,
    reserved_names,
    validate_topics,
)

__all__ = [
    "DEFAULT_MAX_TEXT",
    "EMOJI",
    "GATEWAY_PATHS",
    "Action",
    "MessageParts",
    "Publication",
    "auth_from_query",
    "compose",
    "decode_auth_param",
    "emoji_for",
    "error_body",
    "is_topic",
    "is_topic_path",
    "new_id",
    "parse_actions",
    "parse_publish",
    "recipients_for",
    "reply",
    "reserved_names",
    "to_styled_text",
    "validate_topics",
]
