"""Throwaway XMPP infrastructure for the demo, the tests and the benchmarks.

Nothing in the service imports this package: it starts a private Prosody on loopback
ports and provides a receiving client, so that behaviour is proven against a real server.
"""
