"""The app's exception tree. The CLI prints any of these as one line on stderr and exits 1;
pages show the message. Library errors are translated at the boundary with `raise ... from`.

    ReviewAppError
    ├── InputError      a file, argument or setting is malformed (names file, line, field)
    ├── NotFound        a named study, eval set, reviewer... does not exist
    ├── Forbidden       the caller's role or token does not allow this
    │   └── OutcomesHidden  outcome numbers stay hidden until the study's thresholds are locked
    ├── Conflict        the change contradicts stored data (changed output, locked threshold...)
    │   ├── Busy        the workspace stayed busy with other changes; nothing was saved
    │   │   └── Unreachable  the workspace's database server did not answer; nothing was saved
    │   └── ReportChanged  the report to sign is not the one the signer read
    ├── UnusableWorkspace  the workspace file is not one this version can open (newer, not SQLite)
    └── JudgeUnavailable  a judge model cannot be used (missing key, rejected request, unknown model)
"""

from __future__ import annotations


class ReviewAppError(Exception):
    """Base class of every error the app reports to a user."""


class InputError(ReviewAppError):
    """A file, argument or setting is malformed."""

    @classmethod
    def at(cls, file: str, line: int | None, field: str | None, message: str) -> InputError:
        where = str(file) if line is None else f"{file}:{line}"
        if field:
            where += f": field '{field}'"
        return cls(f"{where}: {message}")


class NotFound(ReviewAppError):
    """A named object does not exist."""


class Forbidden(ReviewAppError):
    """The caller is not allowed to do this."""


class OutcomesHidden(Forbidden):
    """Win rates and other outcomes of a study are hidden until its thresholds are locked."""


class Conflict(ReviewAppError):
    """The change contradicts what is already stored."""


class Busy(Conflict):
    """The workspace stayed busy with other changes for longer than the store waits; the change
    was not made and can simply be tried again."""


class Unreachable(Busy):
    """The workspace's database server could not be reached (restarted, network down): the
    change was not made; the next try connects again."""


class ReportChanged(Conflict):
    """The report a signer read is not the one their signature would land on: something
    changed in between. `differences` names what, one line each."""

    def __init__(self, message: str, differences: list[str]):
        super().__init__(message)
        self.differences = differences


class UnusableWorkspace(ReviewAppError):
    """The workspace file cannot be opened by this version of the app: it was written by a newer
    version, or it is not a workspace at all. It is left exactly as it was."""


class JudgeUnavailable(ReviewAppError):
    """A judge model cannot be used: its key is missing or rejected, the model is unknown, or the
    provider refuses the request. Retrying the same run cannot help until that is fixed."""
