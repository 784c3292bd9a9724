"""What the tests and the benchmarks share: a gateway process started from settings, a test publisher."""
