"""Media adapters: the PyAV transcoder and the guarded HTTP fetcher."""
