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
