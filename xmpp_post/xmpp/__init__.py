"""The XMPP side on slixmpp: the relay (``xmpp_relay``) over a pool of sessions, one per
sender (``pool``, ``session``, ``client``), with acknowledgements, receipts, refusals
and rooms. It never imports the HTTP side."""
