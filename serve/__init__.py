"""Serving the app to visitors: ``smart-suggest serve ssh`` and ``smart-suggest serve web``.

A face like ``tui/`` and the CLI: it imports the app's command line, never the other way
round (the CLI's ``serve`` command imports this package lazily), and the core knows
nothing about it. Every visitor gets their own app process; the server owns limits,
authentication, logging and the per-visitor demo copies.
"""
