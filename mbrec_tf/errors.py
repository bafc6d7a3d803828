"""Errors the user caused: the pipelines print their message as one line and exit with 2."""

from __future__ import annotations


class UserError(ValueError):
    """A mistake in what the user asked for: a flag value, a path, a run directory, data.

    The message says what is wrong and what to do, in one line. Subclasses `ValueError`, so
    library callers that catch bad arguments as `ValueError` keep working.
    """


class RunNotFoundError(UserError, FileNotFoundError):
    """A `--model_dir` that holds no training run (or no checkpoint of one)."""
