"""Bots: messages to a bot account answered by its webhook, or by the built-in alert actions."""
