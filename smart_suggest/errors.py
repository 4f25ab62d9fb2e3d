"""Errors the core raises; the CLI maps them to exit codes and one-line messages.

``InputError`` (and ``NotFoundError``) mean the caller asked for something wrong: exit 2.
Any other ``SmartSuggestError`` is a failure of the environment: exit 1.
"""


class SmartSuggestError(Exception):
    """Base class: a failure with a message fit to show a user as one line."""

    exit_code = 1


class InputError(SmartSuggestError):
    """Bad input from the user: an invalid value, a duplicate name, a wrong file."""

    exit_code = 2


class NotFoundError(InputError):
    """A user, item or experiment that does not exist."""


class DatabaseError(InputError):
    """The database file cannot be used (not SQLite, another application's, too new...)."""


class EngineError(SmartSuggestError):
    """An external SQL engine could not be reached or failed (exit 1: not the input)."""
