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

The work is linear in the text (ntfy's publish runs it on the event loop): the patterns
never backtrack over what another attempt already read, a code span's closing run and
an emphasis' closing mark are looked up in a sorted list of where they occur, and a
kind of mark that has no closing mark left is not looked for again.
"""

from __future__ import annotations

import re
from bisect import bisect_left

_FENCE = re.compile(r"\s{0,3}(```|~~~)")
_HEADING = re.compile(r"\s{0,3}#{1,6}(?=\s|$)")
_MARKUP = re.compile(r"[`\\\[<*_~#]")  # a line without these is left as it is
# one inline piece that is left alone: a run of backticks (a code span when a run as
# long closes it), or an escaped character
_LITERAL = re.compile(r"`++|\\[!-/:-@\[-`{-~]")
_BACKTICKS = re.compile(r"`++")
_IMAGE_OR_LINK = re.compile(
    r"(!?)\[([^\[\]\n]*+)\]\(\s*+<?([^\s()<>]*+)>?(?:\s++\"[^\"]*+\")?\s*+\)")
_AUTOLINK = re.compile(r"<((?:https?|mailto|xmpp):[^\s<>]++)>")
# where some emphasis may open: a mark before a character that can start what it holds
_OPENER = re.compile(r"(?:\*\*\*|\*\*|~~)(?=\S)|\*(?=[^\s*])|(?<!\w)(?:__(?=\S)|_(?=[^\s_]))")
# The emphasis marks, tried in this order where one opens: (mark, XEP-0393 marks,
# where the mark may close: after a character that is not white space...)
_EMPHASES = (
    ("***", ("*_", "_*"), re.compile(r"(?<=\S)(?=\*\*\*)")),   # ***strong emphasis***
    ("**", ("*", "*"), re.compile(r"(?<=\S)(?=\*\*)")),         # **strong**
    ("__", ("*", "*"), re.compile(r"(?<=\S)(?=__(?!\w))")),      # __strong__
    ("~~", ("~", "~"), re.compile(r"(?<=\S)(?=~~)")),           # ~~strike~~
    ("*", ("_", "_"), re.compile(r"(?<=[^\s*])(?=\*)")),        # *emphasis*
    ("_", ("_", "_"), re.compile(r"(?<=[^\s_])(?=_(?!\w))")),    # _emphasis_
)
MAX_NESTING = 4  # marks inside marks are converted this deep; deeper ones stay as they are


def to_styled_text(markdown: str) -> str:
    """``markdown`` as plain text with XEP-0393 styling (see the module docstring)."""
    out: list[str] = []
    fence: str | None = None
    for line in markdown.splitlines():
        if not _MARKUP.search(line):
            out.append(line)
            continue
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
        heading = _HEADING.match(line)
        if heading:
            out.append(_strong_line(_inline(_heading_title(line[heading.end():])).strip()))
        else:
            out.append(_inline(line))
    return "\n".join(out)


def _heading_title(rest: str) -> str:
    """A heading's title: without white space around it and a closing run of ``#``."""
    title = rest.strip()
    bare = title.rstrip("#")
    if bare != title and (not bare or bare[-1].isspace()):
        return bare.strip()
    return title


def _strong_line(text: str) -> str:
    if not text:
        return ""
    plain = text.replace("*", "")
    return f"*{plain}*" if plain.strip() == plain and plain else text


def _inline(text: str) -> str:
    """Convert one line's inline Markdown; code spans and escapes stay as they are."""
    runs: dict[int, list[int]] | None = None  # where each length of backtick run starts
    pieces: list[str] = []
    last = pos = 0
    while (match := _LITERAL.search(text, pos)) is not None:
        start, end = match.span()
        if text[start] == "\\":
            pieces += [_styled(text[last:start]), text[start + 1]]
            last = pos = end
            continue
        if runs is None:
            runs = {}
            for run in _BACKTICKS.finditer(text):
                runs.setdefault(run.end() - run.start(), []).append(run.start())
        closers = runs.get(end - start, [])
        index = bisect_left(closers, end)
        if index == len(closers):  # nothing closes it: the backticks are text
            pos = end
            continue
        close = closers[index] + end - start
        pieces += [_styled(text[last:start]), text[start:close]]
        last = pos = close
    pieces.append(_styled(text[last:]))
    return "".join(pieces)


def _styled(text: str) -> str:
    if not text:
        return text
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
    """Each emphasis, from the leftmost opening mark to the nearest mark that closes it
    (as a lazy regular expression would match it), converted with what it holds."""
    if depth >= MAX_NESTING or not _OPENER.search(text):
        return text
    closers: dict[int, list[int]] = {}
    dead: set[int] = set()  # kinds that no mark closes from here on
    pieces: list[str] = []
    last = pos = 0
    while (opener := _OPENER.search(text, pos)) is not None:
        start = pos = opener.start()
        for kind, (mark, (opening, closing), closes) in enumerate(_EMPHASES):
            inner = start + len(mark)
            if kind in dead or not text.startswith(mark, start) or inner >= len(text) \
                    or not _opens(mark, text[inner]):
                continue
            if kind not in closers:
                closers[kind] = [found.start() for found in closes.finditer(text)]
            index = bisect_left(closers[kind], inner + 1)
            if index == len(closers[kind]):
                dead.add(kind)
                continue
            close = closers[kind][index]
            pieces += [text[last:start], opening, _emphasized(text[inner:close], depth + 1),
                       closing]
            last = pos = close + len(mark)
            break
        else:
            if len(dead) == len(_EMPHASES):
                break
            pos = start + 1
    pieces.append(text[last:])
    return "".join(pieces)


def _opens(mark: str, first: str) -> bool:
    """Whether an emphasis ``mark`` followed by ``first`` opens one."""
    return not first.isspace() and (len(mark) > 1 or first != mark)
