"""The ways in: one folder per front end, each with its routes and its OpenAPI.

``web``: the gateway's own web page, and the template and status endpoints behind it.
"""
