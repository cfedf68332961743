"""Inference adapters: Wan on a local GPU (diffusers), Runway and Luma over HTTP.

Nothing here imports torch or diffusers at import time; :mod:`wan_local` loads them when
the first Wan job runs.
"""
