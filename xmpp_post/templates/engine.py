"""Loading the templates once, and rendering one payload into one message."""

from __future__ import annotations

import asyncio
import functools
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn, cast, get_args

from jinja2 import FileSystemLoader, Template, TemplateNotFound, TemplateSyntaxError
from jinja2.exceptions import SecurityError

from xmpp_post import cpu
from xmpp_post.errors import ConfigError, GatewayError, NotFound, Unprocessable
from xmpp_post.model import xml_text
from xmpp_post.templates import bounded
from xmpp_post.templates.limits import Budget, BudgetExceeded, budgeted, check, check_size
from xmpp_post.templates.sandbox import Sandbox
from xmpp_post.templates.text import oneline, shorten, tidy
from xmpp_post.templates.tool_payload import visible_headers, visible_query

BUILTIN_DIR = Path(__file__).parent / "builtin"
SUFFIX = ".j2"
MAX_SUBJECT = 1024
GRACE_SECONDS = 1.0   # how long past its deadline a render may take to notice it

Reply = Literal["json", "slack", "discord"]
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_HEADER = re.compile(r"\{#-?(.*?)-?#\}", re.DOTALL)


@dataclass(frozen=True)
class Limits:
    """How long one render may take (by ``clock``; tests inject one) and how long its
    message may be."""

    seconds: float = 2.0
    max_output: int = 256 * 1024
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)


@dataclass(frozen=True)
class Rendered:
    """One render's result: a message, or nothing on purpose (``skipped``)."""

    body: str | None
    subject: str | None
    skipped: bool


@dataclass(frozen=True)
class TemplateInfo:
    name: str
    description: str
    reply: Reply
    path: Path
    builtin: bool


class _Skip(Exception):
    """Raised by ``skip()``: this payload sends nothing."""


class _RenderState:
    """What a template chose besides its text, recorded by the functions it calls."""

    def __init__(self) -> None:
        self.subject: str | None = None

    def set_subject(self, text: Any) -> str:
        check_size(text, "a subject")
        subject = shorten(oneline(xml_text("" if text is None else str(text))), MAX_SUBJECT)
        self.subject = subject or None
        return ""

    def skip(self) -> NoReturn:
        raise _Skip


class TemplateSet:
    """The built-in templates and a folder's own, compiled once; see the package docs."""

    def __init__(self, env: Sandbox, infos: dict[str, TemplateInfo],
                 templates: dict[str, Template], files: dict[str, str],
                 limits: Limits) -> None:
        self._env = env
        self._infos = infos
        self._templates = templates
        self._files = files
        self._limits = limits

    @classmethod
    def load(cls, folder: Path | None, *, limits: Limits | None = None) -> TemplateSet:
        """Compile every ``NAME.j2`` of ``folder`` and the built-ins; a file that does not
        compile raises ConfigError naming it and its line."""
        folders = [BUILTIN_DIR]
        if folder is not None:
            if not folder.is_dir():
                raise ConfigError("template_dir", f"{folder} is not a directory")
            folders.insert(0, folder)
        env = Sandbox(FileSystemLoader([str(path) for path in folders]))
        bounded.install(env)
        infos: dict[str, TemplateInfo] = {}
        files: dict[str, Path] = {}
        for source in reversed(folders):         # built-ins first; the folder's win
            for path in sorted(source.glob("*" + SUFFIX)):
                stem = path.name[:-len(SUFFIX)]
                if not _NAME.fullmatch(stem.removeprefix("_")):
                    raise ConfigError("template_dir", f"{path}: a template's file name "
                                      "is NAME.j2, NAME being letters, digits, - and _")
                files[stem] = path
                if not stem.startswith("_"):
                    infos[stem] = _info(stem, path, source == BUILTIN_DIR, infos.get(stem))
        templates: dict[str, Template] = {}
        for stem, path in files.items():
            try:
                template = env.get_template(stem + SUFFIX)
            except TemplateSyntaxError as exc:
                raise ConfigError("template_dir", f"{exc.filename or path}:{exc.lineno}: "
                                  f"{exc.message}") from None
            if stem in infos:
                templates[stem] = template
        shown = {os.path.normpath(path): path.name for path in files.values()}
        return cls(env, infos, templates, shown, limits or Limits())

    def names(self) -> list[str]:
        return sorted(self._infos)

    def describe(self) -> dict[str, str]:
        """Each template's one-line description, by name."""
        return {name: self._infos[name].description for name in self.names()}

    def info(self, name: str) -> TemplateInfo:
        try:
            return self._infos[name]
        except KeyError:
            raise NotFound(f"no template named {shorten(name, 64)!r}; there are: "
                           f"{', '.join(self.names())}", code="unknown_template") from None

    def reply(self, name: str) -> Reply:
        """Which answer a sending tool expects on success (``json``, ``slack`` or
        ``discord``); the HTTP side knows what each one is."""
        return self.info(name).reply

    async def render(self, name: str, payload: Any, headers: Mapping[str, str],
                     query: Mapping[str, str]) -> Rendered:
        """Render in a worker thread (:mod:`xmpp_post.cpu`), so the event loop keeps
        serving and slow renders never hold the threads logins hash passwords in; the
        render stops itself at its deadline, and its answer is not awaited much past it
        (one that waited for a thread past its deadline stops at once)."""
        self.info(name)
        deadline = self._limits.clock() + self._limits.seconds
        render = functools.partial(self.render_sync, name, payload, headers, query,
                                   deadline=deadline)
        work = asyncio.get_running_loop().run_in_executor(cpu.pool(), render)
        try:
            return await asyncio.wait_for(work, self._limits.seconds + GRACE_SECONDS)
        except TimeoutError:
            raise Unprocessable(f"template {name!r}: rendering took longer than "
                                f"{self._limits.seconds:g} s", code="template_error") \
                from None

    def render_sync(self, name: str, payload: Any, headers: Mapping[str, str],
                    query: Mapping[str, str], *, deadline: float | None = None) -> Rendered:
        """Render in the calling thread. Errors are GatewayErrors: 404 unknown_template,
        422 template_error (naming the template and line), 422 missing_body."""
        template = self._templates[self.info(name).name]
        state = _RenderState()
        context = {"payload": payload, "headers": visible_headers(headers),
                   "query": visible_query(query), "set_subject": state.set_subject,
                   "skip": state.skip}
        seconds, clock = self._limits.seconds, self._limits.clock
        budget = Budget(deadline if deadline is not None else clock() + seconds,
                        seconds, max_printed=4 * self._limits.max_output, clock=clock)
        try:
            with budgeted(budget):
                text = self._collect(template.generate(context))
        except _Skip:
            return Rendered(None, None, True)
        except GatewayError:
            raise
        except Exception as exc:
            raise self._failure(name, exc) from None
        body = tidy(text)
        if not body:
            raise Unprocessable(f"template {name!r} produced no text (a template that "
                                "means to send nothing calls skip())", code="missing_body")
        return Rendered(body, state.subject, False)

    def _collect(self, chunks: Iterator[str]) -> str:
        """The output, refused as soon as it grows past the limit."""
        parts: list[str] = []
        size = 0
        try:
            for chunk in chunks:
                size += len(chunk)
                if size > self._limits.max_output:
                    raise BudgetExceeded(f"the message would be longer than "
                                         f"{self._limits.max_output} characters")
                check()
                parts.append(chunk)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return "".join(parts)

    def _failure(self, name: str, exc: Exception) -> Unprocessable:
        where = ""
        tb = exc.__traceback__
        while tb is not None:
            shown = self._files.get(tb.tb_frame.f_code.co_filename)
            if shown is not None:
                prefix = "" if shown == name + SUFFIX else f" {shown}"
                where = f",{prefix} line {tb.tb_lineno}"
            tb = tb.tb_next
        return Unprocessable(f"template {name!r}{where}: {_reason(exc)}",
                             code="template_error")


def _reason(exc: Exception) -> str:
    if isinstance(exc, SecurityError):
        reason = f"not allowed: {exc}"
    elif isinstance(exc, BudgetExceeded):
        reason = str(exc)
    elif isinstance(exc, RecursionError):
        reason = "too deeply nested or recursive"
    elif isinstance(exc, MemoryError):
        reason = "out of memory"
    elif isinstance(exc, TemplateNotFound):
        reason = f"no template {exc.name!r} to include or import"
    else:
        reason = f"{type(exc).__name__}: {exc}"
    return shorten(oneline(xml_text(reason[:2000])), 500)  # an error may quote a payload


def _info(name: str, path: Path, builtin: bool, replaced: TemplateInfo | None) -> TemplateInfo:
    """A template's description and reply, from a comment that opens its file::

        {#
        One line that says what the template is for.
        reply: slack
        #}

    Without ``reply:`` a file that replaces a built-in keeps the built-in's reply, and
    any other answers like the gateway itself ("json").
    """
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("template_dir", f"{path}: cannot read it: {exc}") from None
    description, reply = "", None
    header = _HEADER.match(source.removeprefix("\ufeff"))
    for line in header.group(1).splitlines() if header else []:
        key, colon, value = line.strip().partition(":")
        if colon and key.strip().lower() == "reply":
            reply = value.strip()
            if reply not in get_args(Reply):
                raise ConfigError("template_dir", f"{path}: reply must be one of "
                                  f"{', '.join(get_args(Reply))}, not {reply!r}")
        elif line.strip() and not description:
            description = line.strip()
    if reply is None:
        reply = replaced.reply if replaced is not None else "json"
    return TemplateInfo(name, description, cast(Reply, reply), path, builtin)
