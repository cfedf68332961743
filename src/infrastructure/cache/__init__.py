"""Redis adapters: idempotency locks and live progress."""
