"""Simulated kits: the real firmware under CPython, with stand-ins for machine, network and time."""
