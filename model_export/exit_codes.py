"""The errors ``model_export`` raises on purpose, each with its own exit code.

Exception tree (exit code in brackets)::

    ExportError [1]            base: a user-facing failure, printed as one line, no traceback
    ├── InputError [2]         a file or option the command cannot use (rows file, URI, ...)
    ├── NotAModel [3]          the file is not a model of the framework asked for
    ├── UnsupportedModel [4]   the converter has no conversion for (part of) the model
    ├── ParityFailed [5]       the ONNX model does not answer what the source model answers
    ├── BudgetExceeded [6]     a quantised / pruned variant lost more than its budget
    └── VersionExists [7]      publish would overwrite an existing name/version

Anything else escaping a command is a bug and keeps its traceback.
"""

from __future__ import annotations


class ExportError(Exception):
    """Base class; ``exit_code`` is what ``python -m model_export`` exits with."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputError(ExportError):
    """A file or option the command cannot use: a missing file, an unreadable rows file, a
    bad URI, name or version. Nothing was written."""

    exit_code = 2


class NotAModel(ExportError):
    """The file is not a model of the framework the subcommand converts."""

    exit_code = 3


class UnsupportedModel(ExportError):
    """The converter has no conversion for the model or one of its parts; the message names
    the part and carries the converter's own words."""

    exit_code = 4


class ParityFailed(ExportError):
    """The ONNX model does not answer what its source model answers (or was never checked).

    The files stay for inspection, their card marked ``verify.passed: false``, and
    ``publish`` refuses them.
    """

    exit_code = 5


class BudgetExceeded(ExportError):
    """A quantised or pruned variant lost more than its budget; it was not written."""

    exit_code = 6


class VersionExists(ExportError):
    """``publish`` would overwrite an existing NAME/VERSION: published versions are
    immutable, so nothing was uploaded."""

    exit_code = 7
