"""Signed webhooks: ``POST /hooks/NAME``, a tool's payload rendered by its template."""
