"""Error types for bad input.

``UserFacingError`` (and its subclasses) carry one clear line that names the file and the problem;
the ``mesc3d`` dispatcher prints it without a traceback and exits 1.  Raise them for anything a
user can fix (corrupt archive, wrong image mode, unknown category, invalid config), never for bugs.
"""

from __future__ import annotations

from pathlib import Path


class UserFacingError(Exception):
    """A problem with the user's input, reported as one line."""


class BadInputError(UserFacingError):
    """A specific input file is invalid: ``BadInputError(path, "what is wrong")``."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ConfigError(UserFacingError):
    """The configuration (YAML, experiments sheet or overrides) is invalid."""


QUOTE_LIMIT = 200  # characters of an offending value quoted in an error line
LINE_LIMIT = 1000  # characters of a whole error line printed by the CLI


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` cut to ``limit`` characters; bounded work even for huge nested values."""
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxdict, r.maxlist, r.maxtuple, r.maxset = 3, 8, 8, 8, 8
    r.maxstring = r.maxother = r.maxlong = limit
    text = r.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shorten(text: str, limit: int = LINE_LIMIT) -> str:
    """One error line cut to ``limit`` characters (the middle is dropped, the end kept)."""
    text = " ".join(str(text).split("\n")) if "\n" in str(text) else str(text)
    if len(text) <= limit:
        return text
    keep = limit - 40
    return f"{text[: keep * 3 // 4]} ... [{len(text) - keep} characters cut] ... {text[-(keep // 4):]}"
