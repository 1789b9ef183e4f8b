"""What repository operations report: diff stats and merge outcomes."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, computed_field


class FileStat(BaseModel):
    path: str
    old_path: str | None = None  # set when the file was renamed
    insertions: int
    deletions: int
    binary: bool = False


class DiffStat(BaseModel):
    files: list[FileStat]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def insertions(self) -> int:
        return sum(f.insertions for f in self.files)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def deletions(self) -> int:
        return sum(f.deletions for f in self.files)

    def summary(self) -> str:
        """One line in git's own words, e.g. "3 files changed, 10 insertions(+), 2 deletions(-)"."""
        n = len(self.files)
        return f"{n} file{'s' * (n != 1)} changed, {self.insertions} insertions(+), {self.deletions} deletions(-)"


class MergeResult(BaseModel):
    ok: bool
    sha: str | None  # the head of the target branch after the merge; None when it conflicted
    conflicts: list[str] = []  # paths with conflicts, relative to the repository root
    message: str  # one line for the event log
    workspace_path: Path | None = None  # the kept worktree holding a conflicted merge


def parse_numstat(out: str) -> DiffStat:
    """Parse `--numstat -z`: `ins TAB del TAB path NUL`, or for a rename `ins TAB del TAB NUL old NUL new NUL`."""
    fields = out.split("\0")
    files: list[FileStat] = []
    i = 0
    while i < len(fields) and fields[i]:
        insertions, deletions, path = fields[i].split("\t", 2)
        old_path = None
        if not path:
            old_path, path = fields[i + 1], fields[i + 2]
            i += 2
        i += 1
        binary = insertions == "-"
        files.append(
            FileStat(
                path=path,
                old_path=old_path,
                insertions=0 if binary else int(insertions),
                deletions=0 if binary else int(deletions),
                binary=binary,
            )
        )
    return DiffStat(files=files)
