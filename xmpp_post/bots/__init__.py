"""Bots: messages to a bot's account -> signed deliveries to its webhook -> replies.

* ``signing``: Standard Webhooks headers (``webhook-id``, ``webhook-timestamp``,
  ``webhook-signature``) for a delivery's body.
* ``answers``: what the webhook's answer means (a reply, none, retry, drop) and the
  retry policy (exponential backoff honouring ``Retry-After``, for ``retry_for``).
* ``answering``: the narrow interface of what may answer a message before the webhook
  (the built-in alert actions).
* ``runner``: one bot's lasting queue and its worker (in order, at least once).
* ``lease``: with several instances, each bot runs on the one holding its lease in Redis.
* ``handover``: what those instances share so that one takes a bot over without loss
  (the archive cursor, fenced by the lease; the messages handled).
* ``alert_actions`` (with ``alert_commands``, ``alert_memory``, ``alertmanager_api``):
  the built-in alert actions, answering ``silence``, ``unsilence`` and ``alerts``.

The XMPP side (``xmpp.bot_session``) is reached only through the callbacks and the
``BotLink`` protocol of ``runner``: this package never imports it, nor slixmpp.
"""
