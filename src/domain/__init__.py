"""Entities, the job state machine, the provider catalogue and production paths.

Plain Python: this package imports nothing else of the project.
"""
