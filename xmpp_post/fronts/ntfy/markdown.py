"""Markdown to readable plain text with XEP-0393 (Message Styling) marks.

XEP-0393 clients show ``*strong*``, ``_emphasis_``, ``~strike~``, `` `code` ``, fenced
blocks and ``>`` quotes; the rest of Markdown is turned into text that reads well as is:

===============================  ==========================================
Markdown                         sent as
===============================  ==========================================
``**b**``, ``__b__``             ``*b*``
``***bi***``                     ``*_bi_*``
``*i*``, ``_i_``                 ``_i_``
``~~s~~``                        ``~s~``
``# Heading`` (any level)        ``*Heading*`` on its own line
``[text](url)``                  ``text (url)``; just ``url`` if both are the same
``![alt](url)``                  ``alt (url)``; just ``url`` without alt text
``<https://…>``                  ``https://…``
``\\*`` (escapes)                ``*``
`` `code` ``, fenced blocks      unchanged (nothing inside them is converted)
lists, ``>`` quotes, rules       unchanged
===============================  ==========================================
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"\s{0,3}(```|~~~)")
_HEADING = re.compile(r"\s{0,3}#{1,6}(?:\s+(.*?))?(?:\s+#+)?\s*")
# one inline piece that is left alone: a code span or an escaped character
_LITERAL = re.compile(r"(`+)(?:.+?)\1|\\([!-/:-@\[-`{-~])")
_IMAGE_OR_LINK = re.compile(r"(!?)\[([^\]\n]*)\]\(\s*<?([^\s()<>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_AUTOLINK = re.compile(r"<((?:https?|mailto|xmpp):[^\s<>]+)>")
_EMPHASIS = re.compile(
    r"\*\*\*(?=\S)(.+?)(?<=\S)\*\*\*"       # ***strong emphasis***
    r"|\*\*(?=\S)(.+?)(?<=\S)\*\*"        # **strong**
    r"|(?<!\w)__(?=\S)(.+?)(?<=\S)__(?!\w)"  # __strong__
    r"|~~(?=\S)(.+?)(?<=\S)~~"             # ~~strike~~
    r"|\*(?=[^\s*])(.+?)(?<=[^\s*])\*"     # *emphasis*
    r"|(?<!\w)_(?=[^\s_])(.+?)(?<=[^\s_])_(?!\w)"  # _emphasis_
)
_MARKS = (("*_", "_*"), ("*", "*"), ("*", "*"), ("~", "~"), ("_", "_"), ("_", "_"))
MAX_NESTING = 4  # marks inside marks are converted this deep; deeper ones stay as they are


def to_styled_text(markdown: str) -> str:
    """``markdown`` as plain text with XEP-0393 styling (see the module docstring)."""
    out: list[str] = []
    fence: str | None = None
    for line in markdown.splitlines():
        opening = _FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1) == fence and not line.strip()[3:].strip():
                out.append("```")
                fence = None
            else:
                out.append(line)
            continue
        if opening:
            fence = opening.group(1)
            out.append(line.strip() if fence == "```" else "```" + line.strip()[3:])
            continue
        heading = _HEADING.fullmatch(line)
        if heading:
            title = _inline(heading.group(1) or "").strip()
            out.append(_strong_line(title))
        else:
            out.append(_inline(line))
    return "\n".join(out)


def _strong_line(text: str) -> str:
    if not text:
        return ""
    plain = text.replace("*", "")
    return f"*{plain}*" if plain.strip() == plain and plain else text


def _inline(text: str) -> str:
    """Convert one line's inline Markdown; code spans and escapes stay as they are."""
    pieces: list[str] = []
    last = 0
    for match in _LITERAL.finditer(text):
        pieces.append(_styled(text[last:match.start()]))
        pieces.append(match.group(2) if match.group(2) is not None else match.group())
        last = match.end()
    pieces.append(_styled(text[last:]))
    return "".join(pieces)


def _styled(text: str) -> str:
    text = _IMAGE_OR_LINK.sub(_link, text)
    text = _AUTOLINK.sub(r"\1", text)
    return _emphasized(text, 0)


def _link(match: re.Match[str]) -> str:
    label, url = match.group(2).strip(), match.group(3)
    if not url:
        return label
    if not label or label == url:
        return url
    return f"{label} ({url})"


def _emphasized(text: str, depth: int) -> str:
    if depth >= MAX_NESTING:
        return text

    def mark(match: re.Match[str]) -> str:
        for index, (opening, closing) in enumerate(_MARKS, start=1):
            inner = match.group(index)
            if inner is not None:
                return f"{opening}{_emphasized(inner, depth + 1)}{closing}"
        return match.group()

    return _EMPHASIS.sub(mark, text)
