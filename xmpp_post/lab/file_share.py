"""The lab Prosody's XEP-0363 upload service: Prosody 0.12's own ``mod_http_file_share``
as the component ``upload.<domain>``, served over HTTPS on the lab's loopback port with
the lab's certificate (the one the gateway and the clients trust as ``ca_file``).

``http_host`` and ``http_external_url`` put the service on ``https://<domain>:<port>/``
(the domain, ``localhost`` in the tests, is a name that resolves; ``upload.localhost``
need not). The small module ``mod_lab_upload_retry`` (written into the lab's plugin
folder) lets a test reach XEP-0363's quota answer with a time to retry: a slot request
for a file named ``retry-in-<N>...`` is refused ``resource-constraint`` (type ``wait``)
with ``<retry stamp='now + N s'/>``; any other name goes on to ``mod_http_file_share``.
"""

from __future__ import annotations

from pathlib import Path

RETRY_MODULE = "lab_upload_retry"
RETRY_LUA = """\
-- The lab's stand-in for an upload quota that says when to retry (XEP-0363, 5).
local st = require "util.stanza";
local datetime = require "util.datetime";
local ns = "urn:xmpp:http:upload:0";

module:hook("iq-get/host/" .. ns .. ":request", function (event)
	local request = event.stanza.tags[1];
	local seconds = tonumber((request.attr.filename or ""):match("^retry%-in%-(%d+)"));
	if not seconds then return; end
	local reply = st.error_reply(event.stanza, "wait", "resource-constraint",
		"Quota reached");
	reply:tag("retry", { xmlns = ns, stamp = datetime.datetime(os.time() + seconds) }):up();
	event.origin.send(reply);
	return true;
end, 10);
"""


def write_plugins(folder: Path) -> None:
    """Write the lab's own Prosody modules into ``folder`` (a plugin path)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"mod_{RETRY_MODULE}.lua").write_text(RETRY_LUA)


def config_lines(domain: str, https_port: int, ssl: str, size_limit: int,
                 daily_quota: int | None) -> list[str]:
    """The global HTTPS listener and the upload component, for Prosody's config."""
    quota = daily_quota if daily_quota is not None else 10 * size_limit
    return [
        f'Component "upload.{domain}" "http_file_share"',
        f"  {ssl}",
        f'  http_host = "{domain}"',
        f'  http_external_url = "https://{domain}:{https_port}/"',
        f"  http_file_share_size_limit = {size_limit}",
        f"  http_file_share_daily_quota = {quota}",
        f'  modules_enabled = {{ "{RETRY_MODULE}" }}',
    ]


def https_lines(https_port: int, certificate: Path, key: Path) -> list[str]:
    """The global settings of the HTTPS listener (before any host)."""
    return [
        f"https_ports = {{ {https_port} }}",
        'https_interfaces = { "127.0.0.1" }',
        f'https_ssl = {{ certificate = "{certificate}"; key = "{key}" }}',
    ]
