"""Find the files to ingest under the given paths, and account for every path passed over.

Folders are walked recursively. What the walk does with each entry:

- hidden files and folders (name starting with ``.``) are passed over silently, and hidden
  folders are not entered;
- files whose extension is not one of ``indexing.extensions`` are passed over silently;
- symlinked files are followed (the file is ingested under its target's path);
- symlinked folders are **not** followed (a walk must neither loop nor leave the folder it
  was given); they are listed as passed over, with their target: give that path to ingest it;
- dangling symlinks, symlink loops and entries that are not regular files (FIFOs, sockets,
  devices) with a supported extension are listed as passed over, with the reason;
- a given path that does not exist, and a folder that cannot be listed (permission denied),
  are failures; files under an unlisted folder are also kept out of ``--prune``.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class PathNote:
    """A path the walk did not ingest, and why."""

    path: str
    reason: str


@dataclass
class Discovery:
    """The outcome of walking the given paths."""

    files: list[Path] = field(default_factory=list)
    failed: list[PathNote] = field(default_factory=list)
    passed_over: list[PathNote] = field(default_factory=list)
    walked_folders: list[Path] = field(default_factory=list)
    unlisted_folders: list[Path] = field(default_factory=list)


def discover(paths: Iterable[Path], extensions: Iterable[str]) -> Discovery:
    """Files to ingest under ``paths`` (resolved, de-duplicated, in path order per root).

    ``extensions`` are suffixes with their dot (".md"), compared case-insensitively.
    Never raises for a path it cannot read: that is a ``failed`` note.
    """
    wanted = {e.lower() for e in extensions}
    found = Discovery()
    for path in paths:
        try:
            mode = path.stat().st_mode
        except OSError as exc:
            found.failed.append(PathNote(str(path), _unreachable(path, exc)))
            continue
        if stat.S_ISDIR(mode):
            found.walked_folders.append(path.resolve())
            _walk(path, wanted, found)
        elif stat.S_ISREG(mode):
            found.files.append(path.resolve())
        else:
            found.failed.append(PathNote(str(path), "not a regular file or folder"))
    found.files = list(dict.fromkeys(found.files))
    return found


def _walk(root: Path, wanted: set[str], found: Discovery) -> None:
    candidates: list[Path] = []
    passed_over: list[PathNote] = []

    def unlisted(error: OSError) -> None:
        folder = Path(error.filename)
        found.failed.append(PathNote(str(folder), f"cannot read folder: {error.strerror or error}"))
        found.unlisted_folders.append(folder.resolve())

    for folder, dirnames, filenames in os.walk(root, onerror=unlisted):
        base = Path(folder)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in dirnames:  # os.walk lists symlinked folders but does not enter them
            if (base / name).is_symlink():
                target = os.readlink(base / name)
                reason = f"symlinked folder not followed (-> {target}); give that path to ingest it"
                passed_over.append(PathNote(str(base / name), reason))
        for name in filenames:
            if name.startswith(".") or Path(name).suffix.lower() not in wanted:
                continue
            candidate = base / name
            try:
                mode = candidate.stat().st_mode
            except OSError as exc:
                broken_link = exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)
                note = PathNote(str(candidate), _unreachable(candidate, exc))
                (passed_over if broken_link else found.failed).append(note)
                continue
            if stat.S_ISREG(mode):
                candidates.append(candidate)
            else:
                reason = "not a regular file (a FIFO, socket or device)"
                passed_over.append(PathNote(str(candidate), reason))
    found.files.extend(c.resolve() for c in sorted(candidates))
    found.passed_over.extend(sorted(passed_over, key=lambda n: n.path))


def _unreachable(path: Path, exc: OSError) -> str:
    """Why ``stat`` failed on ``path``, in words."""
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        if path.is_symlink():
            return f"dangling symlink (its target {os.readlink(path)} does not exist)"
        return "no such file or folder"
    return f"cannot read: {exc.strerror or exc}"
