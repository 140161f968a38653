"""The ``xmpp-post`` command: argument parsing and ``main(argv) -> int``, nothing more."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import xmpp_post.fronts  # noqa: F401  (registers the fronts' configuration sections)
from xmpp_post import __version__, allocator, config, logs
from xmpp_post.errors import ConfigError

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2

DESCRIPTION = """\
xmpp-post relays HTTP POST requests into XMPP messages sent by the authenticated user.
It logs in to the XMPP server with the request's own credentials (HTTP Basic), so the
server checks the password and nothing is installed on the server.
"""

SERVE_EPILOG = """\
Every option can also be set in the TOML file given by --config (key = option name with
underscores) and in the environment as XMPP_POST_<OPTION> (e.g. XMPP_POST_DOMAIN,
comma-separated for lists). Precedence: file < environment < command line.

example:
  xmpp-post serve --domain example.org --listen 127.0.0.1:5280
  curl -u alice@example.org:secret -H 'Content-Type: text/plain' \\
       --data 'Backup finished' http://127.0.0.1:5280/msg/bob
"""


def parsers() -> dict[str, argparse.ArgumentParser]:
    """Every command's parser by its name as typed (``xmpp-post``, ``xmpp-post serve``,
    ...), the top one first: what ``main`` parses with, and what the CLI reference of the
    documentation is generated from."""
    parser = argparse.ArgumentParser(prog="xmpp-post", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"xmpp-post {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _serve_parser(commands)
    commands.add_parser("example-config", help="print an example TOML configuration file")
    token = commands.add_parser("token", help="manage API tokens")
    token_commands = token.add_subparsers(dest="token_command", metavar="COMMAND",
                                          required=True)
    create = token_commands.add_parser(
        "create", help="make a new token: print it once, and the TOML that configures it")
    create.add_argument("name", metavar="NAME", help="the token's name (letters, digits, "
                        "- and _), shown in logs and metrics")
    create.add_argument("--account", required=True, metavar="JID",
                        help="the account it sends as (one of [accounts])")
    create.add_argument("--to", action="append", default=[], metavar="JID",
                        help="a recipient it may send to; repeat for several (default: any)")
    create.add_argument("--template", metavar="NAME",
                        help="the template every request is rendered with")
    create.add_argument("--rate", metavar="N/minute",
                        help="most messages (one per recipient) per second, minute or "
                             "hour (N/second, ...)")
    webhook_commands = _webhook_parser(commands)
    template_commands = _template_parser(commands)
    nested = {"token": token_commands, "webhook": webhook_commands,
              "template": template_commands, "omemo": _omemo_parser(commands)}
    found = {parser.prog: parser}
    for name, sub in commands.choices.items():
        found[sub.prog] = sub
        if name in nested:
            found.update({more.prog: more for more in nested[name].choices.values()})
    return found


def _parser() -> argparse.ArgumentParser:
    return next(iter(parsers().values()))


def _serve_parser(commands: Any) -> None:
    """``serve``: one option per setting, in one group per ``config.GROUPS`` entry."""
    serve = commands.add_parser(
        "serve", help="run the gateway", description=DESCRIPTION, epilog=SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("--config", type=Path, metavar="FILE",
                       help="TOML configuration file (see 'xmpp-post example-config')")
    for group in config.GROUPS:
        options = serve.add_argument_group(group.title, group.about)
        for setting in group.settings:
            shown = config.settings.default_text(setting)
            default = f" (default: {shown})" if shown else ""
            if setting.kind == "bool":  # --name and --no-name: either wins over file and env
                options.add_argument(setting.flag, dest=setting.name,
                                     action=argparse.BooleanOptionalAction, default=None,
                                     help=setting.help + default)
            elif setting.kind == "list":
                options.add_argument(setting.flag, dest=setting.name, action="append",
                                     metavar=setting.metavar, help=setting.help)
            else:
                options.add_argument(setting.flag, dest=setting.name,
                                     metavar=setting.metavar, help=setting.help + default)


def _webhook_parser(commands: Any) -> Any:
    webhook = commands.add_parser("webhook", help="manage webhook URLs (/hooks/xph_…)")
    actions = webhook.add_subparsers(dest="webhook_command", metavar="COMMAND",
                                     required=True)
    create = actions.add_parser(
        "create", help="make a new webhook URL for a tool that posts to Slack or "
        "Mattermost: print it once, and the TOML that configures it")
    create.add_argument("name", metavar="NAME", help="the webhook's name (letters, "
                        "digits, - and _), shown in logs and metrics")
    create.add_argument("--account", required=True, metavar="JID",
                        help="the account it sends as (one of [accounts])")
    create.add_argument("--to", action="append", required=True, metavar="JID",
                        help="a recipient of every message; repeat for several")
    create.add_argument("--template", metavar="NAME",
                        help="the template that renders the payload (default: slack)")
    return actions


def _template_parser(commands: Any) -> Any:
    template = commands.add_parser(
        "template", help="try the webhook templates (?template=NAME) without a server",
        description="Show what a webhook payload becomes, or which templates there are. "
                    "Templates come from --template-dir (or XMPP_POST_TEMPLATE_DIR, or "
                    "template_dir in --config FILE) and the built-in ones.")
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--config", type=Path, metavar="FILE", help="TOML configuration")
    where.add_argument("--template-dir", metavar="PATH", help="your templates' folder")
    actions = template.add_subparsers(dest="template_command", metavar="COMMAND",
                                      required=True)
    render = actions.add_parser("render", parents=[where], help="print the subject and "
                                "text a payload becomes (nothing is sent); exit 1 if the "
                                "template fails")
    render.add_argument("name", metavar="NAME", help="the template")
    render.add_argument("file", metavar="FILE", help="the JSON payload (- for stdin)")
    render.add_argument("--header", action="append", default=[], metavar="'K: V'",
                        help="a request header the template reads (X-GitHub-Event: push)")
    render.add_argument("--query", action="append", default=[], metavar="k=v",
                        help="a query parameter the template reads")
    actions.add_parser("list", parents=[where],
                       help="name every template, its reply and description")
    return actions


def _omemo_parser(commands: Any) -> Any:
    omemo = commands.add_parser("omemo", help="the gateway's OMEMO keys (docs/omemo.md)",
                                description="Read or change the OMEMO keys in the state "
                                "directory: fingerprint also while the gateway runs, trust while "
                                "it is stopped.")
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--config", type=Path, metavar="FILE", help="serve's TOML file")
    where.add_argument("--state-dir", metavar="DIR", help="the state directory")
    where.add_argument("--state-secret-file", metavar="PATH",
                       help="the key the OMEMO keys are sealed with")
    actions = omemo.add_subparsers(dest="omemo_command", metavar="COMMAND", required=True)
    fingerprint = actions.add_parser("fingerprint", parents=[where], help="print the "
                                     "fingerprint of the gateway's device for ACCOUNT")
    fingerprint.add_argument("account", metavar="ACCOUNT", help="the sending account")
    trust = actions.add_parser("trust", parents=[where], help="verify a device of JID "
                               "(its fingerprint as its client shows it)")
    trust.add_argument("account", metavar="ACCOUNT", help="the sending account")
    trust.add_argument("jid", metavar="JID", help="the recipient")
    trust.add_argument("fingerprint", metavar="FINGERPRINT", help="the device's fingerprint")
    return actions


def _template_command(args: argparse.Namespace) -> int:
    from xmpp_post.templates import template_command as templates

    try:
        folder = config.load_setting("template_dir", args.template_dir,
                                     config_file=args.config)
    except ConfigError as exc:
        print(f"xmpp-post: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.template_command == "list":
        return templates.list_command(folder)
    return templates.render_command(args.name, args.file, args.header, folder,
                                    query=args.query)


def _loop_factory(want_uvloop: bool) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop unless turned off or not installed (it is not, on Windows)."""
    if not want_uvloop:
        return None
    try:
        import uvloop
    except ImportError:
        logging.getLogger("xmpp_post").info("uvloop is not installed: running on asyncio's "
                                            "own event loop")
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "example-config":
        sys.stdout.write(config.example_toml())
        return EXIT_OK
    if args.command == "token":
        from xmpp_post.auth.token_command import create_command

        return create_command(args.name, args.account, args.to, args.template, args.rate)
    if args.command == "webhook":
        from xmpp_post.auth import webhook_command

        return webhook_command.create_command(args.name, args.account, args.to,
                                              args.template)
    if args.command == "template":
        return _template_command(args)
    if args.command == "omemo":
        from xmpp_post.omemo_command import command

        return command(args.omemo_command, args.account, getattr(args, "jid", None),
                       getattr(args, "fingerprint", None), args.state_dir,
                       args.state_secret_file, args.config)
    if args.command != "serve":
        parser.print_help()
        return EXIT_CONFIG
    flags = {s.name: getattr(args, s.name) for s in config.SETTINGS}

    def source() -> config.Config:  # read again on SIGHUP
        return config.load(flags, config_file=args.config)

    from xmpp_post.config.live import LiveConfig

    try:
        settings = source()
        live = LiveConfig(settings)  # the templates compile, and every name is known
    except ConfigError as exc:
        print(f"xmpp-post: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    logs.setup(settings.log_level, settings.log_format)
    allocator.keep_large_blocks_mapped()  # idle sessions' TLS buffers cost only what they use
    from xmpp_post.service import serve  # slixmpp and aiohttp load only when serving (tested)
    from xmpp_post.xmpp.compat import SlixmppIncompatible

    try:
        with asyncio.Runner(loop_factory=_loop_factory(settings.uvloop)) as runner:
            runner.run(serve(settings, source=source, live=live))
    except ConfigError as exc:  # found once serving begins: the state directory
        print(f"xmpp-post: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (OSError, SlixmppIncompatible) as exc:
        logging.getLogger("xmpp_post").error("cannot serve: %s", exc)
        return EXIT_FAILURE
    return EXIT_OK
