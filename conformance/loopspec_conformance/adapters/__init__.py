"""Built-in adapters: loops that need more than a factory to run scenarios
(`loopspec-conformance run --adapter NAME`, or `--adapter path/to/file.py`)."""
