"""The HTTP server on aiohttp: the application (``app``), its connections (``server``,
``proxy_protocol``), the guards in front of every sending route (``guards``), the one
error renderer (``render``) and the client address (``clients``). It serves the fronts
it is given (``xmpp_post.fronts``) and never imports the XMPP side."""
