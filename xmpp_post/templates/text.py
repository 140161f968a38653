"""Pure text functions behind the filters and the final clean-up of a rendered message.

Work is linear in the text and no call into ``re`` reads more than a bounded stretch of
it (:mod:`xmpp_post.scan`): a regular expression holds the GIL for its whole call, and
the render deadline cannot interrupt it. So no two quantifiers of a pattern can match
the same characters, a repetition that may fail is possessive (``++``, ``{m,n}+``) and
never gives characters back, and a span's body cannot contain its opening mark (a
link's label cannot contain ``[``), so the scans from each opening mark never overlap.
"""

from __future__ import annotations

import html
import math
import re
from datetime import UTC, datetime, timedelta, timezone

from xmpp_post import scan
from xmpp_post.model import xml_text

_NON_SPACE = re.compile(r"\S")
_SPACE_RUN = re.compile(r"(?<!\s)\s")  # the first character of a run of white space
_LINE_BREAK = re.compile("[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")  # str.splitlines'


def tidy(text: str) -> str:
    """A rendered message as sent: XML-safe, no trailing spaces, at most one blank line
    in a row, no blank lines at either end."""
    kept: list[str] = []
    for line in xml_text(text.replace("\r\n", "\n").replace("\r", "\n")).split("\n"):
        line = line.rstrip(" \t")
        if line or (kept and kept[-1]):
            kept.append(line)
    while kept and not kept[-1]:
        kept.pop()
    return "\n".join(kept)


def oneline(text: str) -> str:
    """All white space, line breaks included, collapsed into single spaces."""
    pieces: list[str] = []
    start = 0
    while len(text) - start > scan.BLOCK:  # cut where a run of white space starts
        cut = scan.search(_SPACE_RUN, text, start + scan.BLOCK, reach=1)
        if cut is None:
            break
        pieces.append(text[start:cut.start()])
        start = cut.start()
    pieces.append(text[start:])
    return " ".join(filter(None, (" ".join(piece.split()) for piece in pieces)))


def firstline(text: str) -> str:
    """The first line that is not blank, without white space around it."""
    first = scan.search(_NON_SPACE, text, reach=1)
    if first is None:
        return ""
    end = scan.search(_LINE_BREAK, text, first.start(), reach=1)
    return text[first.start():end.start() if end else len(text)].strip()


def shorten(text: str, width: int) -> str:
    """At most ``width`` characters; a cut text ends with "…"."""
    if len(text) <= width:
        return text
    return text[:max(width - 1, 0)].rstrip() + "…"


def quote(text: str) -> str:
    """Each line as an XEP-0393 quote ("> line"); blank lines around the text dropped."""
    return "\n".join(f"> {line}" if line.strip() else ">"
                     for piece in scan.blocks(text.strip("\n")) for line in piece.splitlines())


# Slack's mrkdwn: <url|label>, <url>, <@U123|name>, <#C123|name>, <!here>, <!date^…|text>
_SLACK_ANGLE = re.compile(r"<([^<>\n]{1,3000}+)>")
_SLACK_MENTION = re.compile(r"<!(?:channel|here|everyone)(?:\|[^<>\n]{0,100}+)?> ?")
_SLACK_ANGLE_REACH, _SLACK_MENTION_REACH = 3100, 128  # the most a match attempt reads


def _nothing(_match: re.Match[str]) -> str:
    return ""


def _slack_angle(match: re.Match[str]) -> str:
    inner = match.group(1)
    target, _, label = inner.partition("|")
    target, label = html.unescape(target), html.unescape(label)
    if target.startswith("!"):
        # <!channel>, <!here>, <!everyone> notify people: dropped; others show their label
        return label if target.startswith(("!subteam", "!date")) else ""
    if target.startswith("@"):
        return label if label.startswith("@") else "@" + (label or target[1:])
    if target.startswith("#"):
        return "#" + (label or target[1:])
    if target.startswith("mailto:"):
        return label or target[len("mailto:"):]
    if not label or label == target:
        return target
    return f"{label} ({target})"


def slack_text(text: str) -> str:
    """Slack (and Mattermost) markup made readable as plain text.

    ``<https://x|label>`` becomes "label (https://x)", ``<https://x>`` the URL, user and
    channel references their names; ``<!channel>``-style mentions are dropped and
    ``&amp; &lt; &gt;`` unescaped. Slack's ``*bold*``, ``_italic_``, ``~strike~`` and
    backticks are XEP-0393 already.
    """
    text = scan.sub(_SLACK_MENTION, _nothing, text, reach=_SLACK_MENTION_REACH)
    text = scan.sub(_SLACK_ANGLE, _slack_angle, text, reach=_SLACK_ANGLE_REACH)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


_MD_COMMENT_END = "-->"
_MD_INLINE = re.compile(
    r"!?\[([^\[\]\n]{0,300}+)\]\((https?://[^\s()]{1,2000}+)\)"  # [label](url), ![alt](url)
    r"|\*\*([^*\n]{1,300}+)\*\*"                                  # **bold**
    r"|__([^_\n]{1,300}+)__"                                      # __bold__ / underline
    r"|~~([^~\n]{1,300}+)~~"                                      # ~~strike~~
)
_MD_INLINE_REACH = 2400
_MD_HEADING = re.compile(r"^#{1,6}[ \t]", re.MULTILINE)  # a heading's start


def _md_inline(match: re.Match[str]) -> str:
    label, url, bold, underline, strike = match.groups()
    if url is not None:
        return f"{label} ({url})" if label and label != url else url
    if bold is not None:
        return f"*{bold.strip()}*"
    if underline is not None:
        return f"_{underline.strip()}_"
    return f"~{strike.strip()}~"


def md_text(text: str) -> str:
    """Common Markdown (GitHub, GitLab, Discord) turned into XEP-0393 styling.

    ``**b**`` and ``# Heading`` become ``*b*``, ``__u__`` ``_u_``, ``~~s~~`` ``~s~``,
    ``[label](url)`` "label (url)"; HTML comments (``<!-- … -->``) are removed. Code spans
    and fences are the same in both.
    """
    text = _md_headings(_strip_html_comments(text))
    return scan.sub(_MD_INLINE, _md_inline, text, reach=_MD_INLINE_REACH)


def _md_headings(text: str) -> str:
    """Each heading's title in bold, without a closing run of ``#`` (``## Title ##``)."""
    parts: list[str] = []
    last = 0
    for match in scan.finditer(_MD_HEADING, text, reach=8):
        end = text.find("\n", match.end())
        end = len(text) if end == -1 else end
        title = text[match.end():end].strip()
        bare = title.rstrip("#")
        if bare != title and (not bare or bare[-1] in " \t"):
            title = bare.rstrip()
        if title:
            parts += [text[last:match.start()], f"*{title}*"]
            last = end
    parts.append(text[last:])
    return "".join(parts)


def _strip_html_comments(text: str) -> str:
    parts: list[str] = []
    start = 0
    while (opening := text.find("<!--", start)) != -1:
        closing = text.find(_MD_COMMENT_END, opening + 4)
        if closing == -1:
            break
        parts.append(text[start:opening])
        start = closing + len(_MD_COMMENT_END)
    parts.append(text[start:])
    return "".join(parts)


_ISO_TIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:[.,]\d{1,12})?)?)?"
    r"\s*(Z|UTC|[+-]\d\d:?\d\d)?")
TIME_FORMAT = "%Y-%m-%d %H:%M UTC"
_LONGEST_TIME = 64


def when(value: object) -> str:
    """A time as "2024-05-01 12:00 UTC", from ISO 8601 / RFC 3339 text (any fraction,
    "Z", an offset or " UTC") or Unix seconds (or milliseconds). Go's zero time
    (``0001-01-01T00:00:00Z``, Alertmanager's endsAt of a firing alert) gives "";
    anything else is returned as it was."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    text = str(value).strip()
    if len(text) <= _LONGEST_TIME:  # float() of a long text is slow, and no number
        try:
            return _from_epoch(float(text))
        except ValueError:
            pass
    match = _ISO_TIME.fullmatch(text) if len(text) <= _LONGEST_TIME else None
    if not match:
        return text
    year, month, day, hour, minute, second, zone = match.groups()
    if int(year) <= 1:
        return ""
    try:
        moment = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                          int(second or 0), tzinfo=_zone(zone))
    except ValueError:
        return text
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def _zone(zone: str | None) -> timezone:
    if zone in (None, "Z", "UTC"):
        return UTC
    assert zone is not None
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def _from_epoch(seconds: float) -> str:
    if seconds > 1e11:  # milliseconds
        seconds /= 1000
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime(TIME_FORMAT)
    except (OverflowError, OSError, ValueError):
        return ""


def duration(value: object) -> str:
    """Seconds as "3d 4h", "1h 2m", "4m 12s" or "12s"; "" for anything but a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        text = str(value)
        try:
            value = float(text) if len(text) <= _LONGEST_TIME else math.nan
        except ValueError:
            return ""
    if not 0 <= value < 1e12:
        return ""
    total = round(value)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    units = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
    first = next((i for i, (amount, _) in enumerate(units) if amount), len(units) - 1)
    shown = [f"{amount}{unit}" for amount, unit in units[first:first + 2] if amount]
    return " ".join(shown) or "0s"
