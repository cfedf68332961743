"""Object storage adapters: S3 (production) and a local directory (embedded default)."""
