"""Errors a user can fix: each message names the key, the bad value and what is allowed."""

from __future__ import annotations


class OvergenError(Exception):
    """Base class: caught by the entry points, printed without a traceback, exit code 2."""


class ConfigError(OvergenError, ValueError):
    """A config value is out of range or inconsistent."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value!r} is not allowed: {allowed}")

    def __reduce__(self):  # pickled by a joblib sweep's worker, rebuilt in the launcher
        return type(self), (self.key, self.value, self.allowed)


class DataError(OvergenError):
    """Input data is missing or corrupt."""


class CheckpointError(OvergenError):
    """A checkpoint is missing or unreadable."""


class NonFiniteLossError(OvergenError):
    """Training produced a NaN or infinite loss."""
