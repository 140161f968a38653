"""Webhooks: ``POST /hooks/NAME`` (signed) and ``POST /hooks/xph_…`` (the URL is the
secret), a tool's payload rendered by its template."""
