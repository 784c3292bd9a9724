"""The ``lauks`` command: every part's subcommands put together, and ``lauks up``, the local stack.

It sits above every other package (it imports them all), so the foundation, lauks/, imports none.
"""
