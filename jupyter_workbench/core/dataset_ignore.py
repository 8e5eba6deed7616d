"""Which files of a folder a commit leaves out, in ``.gitignore``'s syntax: notebook checkpoints,
caches and OS litter by default, then the folder's own ``.wbignore``, then the caller's patterns.
The last pattern that matches a path decides, so ``!__pycache__/`` takes a default back."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pathspec

from .errors import BadRequest

IGNORE_FILE = ".wbignore"
DEFAULT_IGNORE: tuple[str, ...] = (
    ".ipynb_checkpoints/",  # JupyterLab's autosaves, beside every notebook opened
    "__pycache__/",
    ".git/",
    ".DS_Store",  # macOS Finder
    "Thumbs.db",  # Windows Explorer
    IGNORE_FILE,  # the rules, not the data
)
MAX_IGNORE_BYTES = 1024 * 1024


class IgnoreRules:
    """The patterns of one commit; ``ignores(path, folder=...)`` answers for a dataset path."""

    def __init__(self, patterns: Sequence[str], *, field: str = "ignore") -> None:
        self.patterns = tuple(patterns)
        try:
            self._spec = pathspec.GitIgnoreSpec.from_lines(self.patterns)
        except (ValueError, TypeError, re.error) as exc:
            raise BadRequest(
                f"{field}: a pattern is not valid .gitignore syntax ({exc})", code="invalid_field"
            ) from None

    @classmethod
    def for_folder(cls, root: Path, extra: str | Sequence[str] = ()) -> IgnoreRules:
        """The defaults, ``root/.wbignore`` (if there is one) and ``extra`` (one pattern or
        several), in that order."""
        extra = [extra] if isinstance(extra, str) else list(extra)
        bad = [p for p in extra if not isinstance(p, str) or "\n" in p or "\r" in p]
        if bad:
            raise BadRequest(f"ignore: {bad[0]!r} is not one pattern", code="invalid_field")
        own: list[str] = []
        rules_file = root / IGNORE_FILE
        if rules_file.is_file():
            data = rules_file.read_bytes()
            if len(data) > MAX_IGNORE_BYTES:
                raise BadRequest(
                    f"{IGNORE_FILE}: larger than {MAX_IGNORE_BYTES} bytes", code="invalid_source"
                )
            # (utf-8-sig: a byte-order mark, as Windows' Notepad writes, is no pattern's)
            own = data.decode("utf-8-sig", errors="replace").splitlines()
            cls(own, field=IGNORE_FILE)  # its own error names the file
        return cls([*DEFAULT_IGNORE, *own, *extra])

    def ignores(self, path: str, *, folder: bool) -> bool:
        return bool(self._spec.match_file(path + "/" if folder else path))


def shown(ignored: Sequence[str], limit: int = 5) -> str:
    """``ignored`` for a message: the first few, then how many more."""
    head = ", ".join(ignored[:limit])
    more = len(ignored) - limit
    return f"{head} and {more} more" if more > 0 else head
