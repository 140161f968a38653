"""xmpp-post: an HTTP to XMPP gateway that sends as the authenticated user."""

__version__ = "0.1.0"
