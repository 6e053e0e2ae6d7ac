"""The one exception type that carries a sentence meant for the user.

Anything raised as `BrickyardError` is printed by the CLI as a single line (no traceback):
it must say what is wrong and what to do about it.
"""


class BrickyardError(Exception):
    """A problem the user can fix: bad config, missing Java, unreachable jar repository, ..."""


class ConfigError(BrickyardError):
    """A config file or value that does not validate."""


# What the operating system says when storage fails, as it appears in a Python exception or in the
# text of a JVM exception that Spark passes up (Hadoop and Delta quote the OS message).
_STORAGE = (
    ("No space left on device", "is full"),
    ("Disk quota exceeded", "is over its disk quota"),
    ("Read-only file system", "is read-only"),
    ("Permission denied", "refused a write (permission denied)"),
)


def storage_failure(exc: BaseException, job: str = "the job") -> str | None:
    """One sentence for a write that failed because the lakehouse's storage did, or None.

    Delta commits are atomic: a job that fails this way leaves every table at its last committed
    version, and running it again once there is room finishes the work."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text = f"{exc}"
        for needle, what in _STORAGE:
            if needle in text:
                return (f"{job} stopped because the lakehouse's storage {what}; every table stays at its last "
                        "committed version, so free space (or fix permissions) and run it again")
        exc = exc.__cause__ or exc.__context__
    return None
