# The pure core: no machine, network or socket imports here, so it runs under MicroPython, CPython and Node.
