"""The one exception type that carries a sentence meant for the user.

Anything raised as `BrickyardError` is printed by the CLI as a single line (no traceback):
it must say what is wrong and what to do about it.
"""


class BrickyardError(Exception):
    """A problem the user can fix: bad config, missing Java, unreachable jar repository, ..."""


class ConfigError(BrickyardError):
    """A config file or value that does not validate."""
