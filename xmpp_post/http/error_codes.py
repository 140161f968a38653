"""Every code word an error answer can carry: its HTTP status and what it means.

One registry, written once. The documentation's error-code table is generated from it
(``xmpp_post.docsgen``), and a test proves it complete and true: every code word the
package can raise is here, with the status ``http.render.status_of`` gives it.

``status`` is the usual status; ``also`` lists the others the same code can have, and
``meaning`` says when. On any path, the body is ``{"error": code, "message": text}``
(ntfy's paths add ``http`` and ``code``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorCode:
    code: str
    status: int
    meaning: str
    also: tuple[int, ...] = ()  # other statuses of the same code; the meaning says when


_WAIT = " 503, with Retry-After, when the server says to wait (a retry later may succeed)."

ERROR_CODES: tuple[ErrorCode, ...] = (
    # 400: the request is malformed; the same request gets the same answer.
    ErrorCode("bad_request", 400, "The request is malformed (most refusals have a code of "
              "their own)."),
    ErrorCode("invalid_json", 400, "The body is not valid JSON, or not the JSON object "
              "expected."),
    ErrorCode("invalid_form", 400, "The body is not a form of name=value pairs, or a "
              "template's form lacks its one field, payload; or not valid "
              "multipart/form-data (more than 100 parts, a part that holds parts or is "
              "encoded)."),
    ErrorCode("too_many_files", 400, "More than 10 parts named file in one request."),
    ErrorCode("invalid_encoding", 400, "A path, query string, form, header or body is not "
              "valid text in its encoding (UTF-8 after percent-decoding, or the charset)."),
    ErrorCode("invalid_field", 400, "A JSON member has the wrong type (to: a string or an "
              "array of strings; other fields: a string)."),
    ErrorCode("unknown_field", 400, "A field the API does not know: typos do not pass "
              "silently."),
    ErrorCode("duplicate_field", 400, "A field given twice, or in both the query string and "
              "the body."),
    ErrorCode("sender_field", 400, "A from or sender field: the sender is always the "
              "authenticated user."),
    ErrorCode("several_recipients", 400, "Several recipients where the endpoint takes one."),
    ErrorCode("invalid_jid", 400, "The recipient is not a valid JID, or the server says so "
              "(jid-malformed)." + _WAIT, also=(503,)),
    ErrorCode("invalid_room", 400, "type=groupchat to a full JID: a room is addressed by "
              "its bare JID."),
    ErrorCode("conflicting_recipient", 400, "The recipients in the path and in to differ."),
    ErrorCode("too_many_recipients", 400, "More recipients than max_recipients."),
    ErrorCode("invalid_type", 400, "A type other than chat, normal, headline or groupchat, "
              "or another explicit type to a room."),
    ErrorCode("invalid_character", 400, "A character XML cannot carry (a control character "
              "other than tab, line feed and carriage return)."),
    ErrorCode("invalid_id", 400, "The id field is not 1 to 64 of A-Z a-z 0-9 . _ : -."),
    ErrorCode("invalid_thread", 400, "The thread field is not 1 to 128 of A-Z a-z 0-9 . _ "
              ": -."),
    ErrorCode("invalid_lang", 400, "The lang field is not a language tag such as en or "
              "de-CH."),
    ErrorCode("invalid_oob_url", 400, "The oob_url field is not an absolute http(s) URL "
              "with a host, of at most 2048 characters."),
    ErrorCode("invalid_receipt", 400, "The receipt field is not true, false, 1 or 0, or "
              "asks a receipt of a group chat message."),
    ErrorCode("invalid_nick", 400, "The nick field is not a valid room nickname, or the "
              "room refused it (jid-malformed)."),
    ErrorCode("invalid_idempotency_key", 400, "The Idempotency-Key is not 1 to 255 "
              "printable ASCII characters."),
    ErrorCode("duplicate_authorization", 400, "More than one Authorization header."),
    ErrorCode("duplicate_header", 400, "More than one Idempotency-Key header."),
    ErrorCode("incomplete_body", 400, "The client shut down its side before the whole body "
              "arrived."),
    ErrorCode("malformed_request", 400, "The request is not valid HTTP/1.1 (bare \\n line "
              "endings, a malformed request line); the connection is closed."),
    ErrorCode("query_not_allowed", 400, "A signed webhook (/hooks/NAME) came with a query "
              "string, which no signature covers: what it sends comes from the "
              "configuration and the signed body only."),
    ErrorCode("unsupported_field", 400, "ntfy: a parameter the gateway cannot honour "
              "(delay, email, call, template): refused, never dropped."),
    ErrorCode("invalid_topic", 400, "ntfy: no topic, or one that is not 1 to 64 of A-Z a-z "
              "0-9 - _ (or not a valid XMPP user name)."),
    ErrorCode("topic_reserved", 400, "ntfy: the topic is one of the gateway's own paths."),
    ErrorCode("invalid_priority", 400, "ntfy: a priority other than 1 to 5, min, low, "
              "default, high, urgent or max."),
    ErrorCode("invalid_attach", 400, "ntfy: the attach URL is not a valid http(s) URL."),
    ErrorCode("invalid_click", 400, "ntfy: the click URL contains a space or control "
              "character."),
    ErrorCode("attachment_not_supported", 400, "ntfy: a JSON publish with a filename but "
              "no attach URL (a file is PUT to /<topic> as the body)."),
    ErrorCode("invalid_actions", 400, "ntfy: the actions break ntfy's rules (at most three; "
              "view, broadcast or http; a label; a URL for view and http)."),
    # 401: credentials; with WWW-Authenticate.
    ErrorCode("unauthorized", 401, "Credentials are missing or malformed (HTTP Basic "
              "user@domain:password, or a Bearer token)."),
    ErrorCode("invalid_credentials", 401, "The XMPP server rejected the credentials, or the "
              "token is unknown or revoked: a failed login, counted by the throttle."),
    ErrorCode("missing_signature", 401, "A signed webhook's delivery has no signature "
              "header."),
    ErrorCode("invalid_signature", 401, "A signed webhook's delivery has a wrong "
              "signature."),
    ErrorCode("stale_signature", 401, "A signed webhook's delivery has a timestamp more "
              "than max_age seconds off."),
    ErrorCode("invalid_auth_param", 401, "ntfy's auth query parameter is not the base64 of "
              "a Basic or Bearer Authorization value."),
    # 403: the sender may not, or the server or room refused.
    ErrorCode("forbidden", 403, "The sender may not do this."),
    ErrorCode("recipient_not_allowed", 403, "The token may not send to that recipient."),
    ErrorCode("encryption_required", 403, "The request asked for encrypt=none, and the "
              "token or webhook always encrypts (its encrypt = \"omemo\")."),
    ErrorCode("template_not_allowed", 403, "The token is bound to another template (or, on "
              "ntfy's paths, to any template)."),
    ErrorCode("not_admin", 403, "Valid credentials, but not listed in admin: the "
              "gateway's state (GET /web/status) is for admins."),
    ErrorCode("domain_not_served", 403, "The sender's domain is not one of domain: refused "
              "before any connection."),
    ErrorCode("room_members_only", 403, "The room is members-only and the sender is not a "
              "member (registration-required)."),
    ErrorCode("room_banned", 403, "The sender is banned from the room (forbidden)."),
    ErrorCode("room_password", 403, "The room's password is missing or wrong "
              "(not-authorized)."),
    ErrorCode("room_full", 403, "The room has its maximum of occupants "
              "(service-unavailable)."),
    ErrorCode("room_refused", 403, "The room refused the sender (not-acceptable)."),
    ErrorCode("nick_conflict", 403, "The nick and nick-2 to nick-5 are all taken in the "
              "room."),
    ErrorCode("room_refused_message", 403, "Joined, but the room refused the message (a "
              "visitor in a moderated room)."),
    ErrorCode("room_join_refused", 403, "The room refused the join for another reason."),
    ErrorCode("recipient_blocked", 403, "The sender blocks the recipient (not-acceptable "
              "with XEP-0191's blocked)." + _WAIT, also=(503,)),
    ErrorCode("recipient_refused", 403, "The server refused the message for another reason "
              "(forbidden, not-allowed, policy-violation, ...)."),
    # 404: no such thing.
    ErrorCode("not_found", 404, "No such endpoint, or no such file of the web page."),
    ErrorCode("room_not_found", 404, "No such room (item-not-found, or not-allowed to "
              "create it), or type=groupchat to something that is not a room; the gateway "
              "never creates rooms."),
    ErrorCode("webhook_not_found", 404, "No signed webhook of that name."),
    ErrorCode("unknown_template", 404, "No template of that name (the message names the "
              "templates there are)."),
    ErrorCode("recipient_unavailable", 404, "service-unavailable: no such account, the "
              "recipient blocks the sender, or its offline storage is full (servers do not "
              "say which)." + _WAIT, also=(503,)),
    ErrorCode("recipient_not_found", 404, "item-not-found, such as an occupant who is not "
              "in the room." + _WAIT, also=(503,)),
    ErrorCode("recipient_server_not_found", 404, "remote-server-not-found: the recipient's "
              "domain has no server, or it cannot be reached." + _WAIT, also=(503,)),
    ErrorCode("method_not_allowed", 405, "Another method than the path's (POST and OPTIONS; "
              "ntfy's paths their own); with Allow."),
    ErrorCode("client_too_slow", 408, "The body did not arrive within client_timeout."),
    ErrorCode("recipient_gone", 410, "The recipient's address is no longer in use "
              "(gone)." + _WAIT, also=(503,)),
    # 413, 415, 417, 422, 431: the request's content.
    ErrorCode("payload_too_large", 413, "The body is over max_body (max_template_body when "
              "a template renders it)."),
    ErrorCode("stanza_too_large", 413, "The message's stanza, its text escaped as XML, "
              "would be over max_stanza_size: checked before anything is sent."),
    ErrorCode("file_too_large", 413, "A file is over max_file_size (the files of a request "
              "together, too), or over the limit the sender's server advertises or "
              "answers: refused before anything is uploaded or sent."),
    ErrorCode("message_too_long", 413, "ntfy: the message is over ntfy_max_text."),
    ErrorCode("unsupported_media_type", 415, "Another or no Content-Type (for a template: "
              "neither JSON nor a form)."),
    ErrorCode("unsupported_charset", 415, "A charset that is not a text encoding Python "
              "knows (rot13, base64, ...), or punycode or idna (their decoding takes "
              "quadratic time)."),
    ErrorCode("http_error", 417, "An Expect header other than 100-continue (or another "
              "refusal with the status aiohttp chose)."),
    ErrorCode("unprocessable", 422, "The request cannot be processed."),
    ErrorCode("invalid_encrypt", 400, "encrypt is neither none nor omemo."),
    ErrorCode("omemo_unavailable", 422, "The message was to be encrypted with OMEMO and "
              "cannot be (the message says why: the recipient has no OMEMO device, its keys "
              "are readable only by its contacts, the room is not members-only and "
              "non-anonymous, or the gateway keeps no keys); nothing was sent in clear."),
    ErrorCode("missing_recipient", 422, "No recipient, in the path or in to."),
    ErrorCode("missing_body", 422, "No text (empty or white space only), or a template made "
              "none."),
    ErrorCode("idempotency_key_reused", 422, "An Idempotency-Key reused for a different "
              "request."),
    ErrorCode("template_error", 422, "A template failed on the payload or went over a limit "
              "(the message names the template and line)."),
    ErrorCode("exceeds_rate", 422, "A token's request with more messages (one per "
              "recipient) than its rate allows at all."),
    # 429: slow down; with Retry-After, and the XMPP server is not asked.
    ErrorCode("too_many_requests", 429, "Too many requests; with Retry-After."),
    ErrorCode("too_many_failed_logins", 429, "Too many failed logins (or logins in flight, "
              "refused tokens or signatures) for this account or address; with "
              "Retry-After."),
    ErrorCode("rate_limited", 429, "A token whose messages (one per recipient) would go "
              "over its rate; nothing sent; with Retry-After."),
    ErrorCode("upload_quota", 429, "The sender's upload service refused a file for now (a "
              "quota) and said until when: Retry-After. 503 with the gateway's Retry-After "
              "when it did not say.", also=(503,)),
    ErrorCode("too_many_uploads", 429, "More than max_uploads_per_address bodies still "
              "arriving from one address; with Retry-After."),
    ErrorCode("header_too_large", 431, "The request line or a header field is over "
              "max_header_size; the connection is closed."),
    ErrorCode("client_disconnected", 499, "Never sent: the client disconnected before its "
              "body arrived; logged and counted as 499."),
    # 5xx: the gateway's or the XMPP side's; 503 and 504 with Retry-After.
    ErrorCode("internal_error", 500, "The gateway failed unexpectedly (a bug: bad input "
              "never causes it)."),
    ErrorCode("upload_unavailable", 501, "The sender's XMPP server offers no file upload "
              "(XEP-0363); nothing sent. 503, with Retry-After, when it did not answer the "
              "question in time.", also=(503,)),
    ErrorCode("upstream_error", 502, "The XMPP side failed."),
    ErrorCode("refused", 502, "The XMPP server answered with an error."),
    ErrorCode("upload_refused", 502, "The sender's server refused an upload slot for a "
              "file (its condition in the message); nothing sent. 403 for forbidden or "
              "not-allowed, 415 for a type it does not take (not-acceptable), 400 for "
              "bad-request.", also=(400, 403, 415)),
    ErrorCode("upload_failed", 502, "The HTTPS upload of a file to the slot the server "
              "gave failed (a status, a certificate not verified, no answer) or took over "
              "upload_timeout; no message was sent."),
    ErrorCode("account_login_failed", 502, "The XMPP server refused the password the "
              "gateway holds for one of its [accounts] (changed on the server?): the "
              "operator's to fix, logged at error level, never the caller's 401."),
    ErrorCode("busy", 503, "max_concurrent_requests are being handled."),
    ErrorCode("request_timeout", 503, "No session could be had within request_timeout; "
              "nothing was sent. 504 once the message was written: it may or may not have "
              "been delivered.", also=(504,)),
    ErrorCode("session_limit", 503, "max_sessions are open and none is idle."),
    ErrorCode("state_unavailable", 503, "With redis_url: Redis did not answer and the "
              "request needs it (an Idempotency-Key, or a login the throttle must count); "
              "with state_dir: the database cannot be written (the disk full, the file "
              "read-only) and the request has an Idempotency-Key; nothing was sent."),
    ErrorCode("queue_full", 503, "A queue kept for a feature (a bot's messages waiting for "
              "its callback) holds as many entries as it may; nothing was queued."),
    ErrorCode("stored_answer_unreadable", 503, "The answer Redis holds for this "
              "Idempotency-Key is not one the gateway wrote (logged at error level); the "
              "request may have been sent already, so it is not sent again: Retry-After "
              "says when the entry expires."),
    ErrorCode("xmpp_unavailable", 503, "The XMPP server is unavailable."),
    ErrorCode("xmpp_unreachable", 503, "The XMPP server could not be reached."),
    ErrorCode("connect_timeout", 503, "No XMPP session within connect_timeout."),
    ErrorCode("xmpp_disconnected", 503, "The XMPP server closed the connection, or it was "
              "lost; nothing was acknowledged."),
    ErrorCode("session_closed", 503, "The sender's XMPP session closed while the request "
              "waited for it."),
    ErrorCode("stream_error", 503, "The XMPP server ended the stream."),
    ErrorCode("tls_required", 503, "The XMPP server offered no TLS: credentials are never "
              "sent in clear."),
    ErrorCode("tls_failed", 503, "TLS to the XMPP server failed (certificate or name not "
              "verified)."),
    ErrorCode("auth_unavailable", 503, "The XMPP server could not check the password right "
              "now (temporary-auth-failure)."),
    ErrorCode("recipient_busy", 503, "The recipient's server cannot take the message now (an "
              "error of type wait, or resource-constraint)."),
    ErrorCode("ack_timeout", 504, "The message was written but not acknowledged within "
              "ack_timeout: it may or may not have been delivered."),
    ErrorCode("room_timeout", 504, "The room did not answer the join, or pass the message "
              "on, within ack_timeout."),
    ErrorCode("recipient_server_timeout", 504, "remote-server-timeout: the recipient's "
              "server did not answer its server."),
)

BY_CODE: dict[str, ErrorCode] = {entry.code: entry for entry in ERROR_CODES}
