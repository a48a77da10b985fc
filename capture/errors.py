"""Errors raised by capture sources."""


class CaptureError(Exception):
    """A capture source cannot be opened or read; the message is meant for the operator."""
