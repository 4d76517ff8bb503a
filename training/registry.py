"""The adapter registry: ``<root>/<name>/`` folders, each with weights and a manifest.

Training writes here and nothing else does; the generator learns about adapters only
from here. A run writes into a staging folder and renames it into place at the very end,
so a failed or interrupted run leaves the registry exactly as it was. Names are plain
identifiers: a path, ``..`` or a symlink that leaves the root is refused.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from indexing.errors import NotFound
from training.methods import is_generative

MANIFEST = "manifest.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class RegistryError(NotFound, ValueError):
    """An adapter name or manifest problem; the message names the adapter."""

    label = "registry"


@dataclass
class Manifest:
    """What an adapter is and how it was made; written as ``manifest.json``."""

    name: str
    kind: str
    method: str
    base_model: str
    dataset: str = ""
    dataset_sha256: str = ""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    trainable_parameters: int = 0
    total_parameters: int = 0
    created: str = ""
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        """Parse a manifest, ignoring unknown keys from newer versions."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def validate_name(name: str) -> str:
    """Return ``name`` if it is a plain adapter name, else raise saying why."""
    if not _NAME.match(name) or ".." in name:
        raise RegistryError(
            f"invalid adapter name {name!r}: use letters, digits, '.', '_' or '-' "
            "(no paths), starting with a letter or digit"
        )
    return name


class AdapterRegistry:
    """Adapters under one root folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str) -> Path:
        """The folder of adapter ``name``; refuses names that escape the root."""
        folder = self.root / validate_name(name)
        if folder.is_symlink() or (
            folder.exists() and not folder.resolve().is_relative_to(self.root.resolve())
        ):
            raise RegistryError(f"adapter {name!r} points outside the registry; refused")
        return folder

    def exists(self, name: str) -> bool:
        """True when a complete adapter ``name`` is registered."""
        return (self.path(name) / MANIFEST).exists()

    def revision(self, name: str) -> int:
        """A number that changes whenever ``name`` is committed again (``--overwrite``):
        its manifest's modification time in ns; ``RegistryError`` if unknown."""
        try:
            return (self.path(name) / MANIFEST).stat().st_mtime_ns
        except FileNotFoundError:
            raise RegistryError(f"unknown adapter {name!r}") from None

    def get(self, name: str) -> Manifest:
        """The manifest of ``name``."""
        manifest = self.path(name) / MANIFEST
        if not manifest.exists():
            known = ", ".join(m.name for m in self.list()) or "none yet"
            raise RegistryError(f"unknown adapter {name!r} (registered: {known})")
        return Manifest.from_dict(json.loads(manifest.read_text()))

    def list(self) -> list[Manifest]:
        """All complete adapters, newest first."""
        if not self.root.exists():
            return []
        manifests = []
        for folder in sorted(self.root.iterdir()):
            manifest = folder / MANIFEST
            if folder.is_dir() and not folder.is_symlink() and manifest.exists():
                manifests.append(Manifest.from_dict(json.loads(manifest.read_text())))
        return sorted(manifests, key=lambda m: m.created, reverse=True)

    def generative(self) -> list[str]:
        """Names of the adapters a chat can answer with (``is_generative``), newest first."""
        return [m.name for m in self.list() if is_generative(m.kind)]

    def size_bytes(self, name: str) -> int:
        """Bytes on disk of an adapter."""
        return sum(f.stat().st_size for f in self.path(name).rglob("*") if f.is_file())

    def delete(self, name: str) -> None:
        """Remove an adapter."""
        self.get(name)
        shutil.rmtree(self.path(name))

    def update_metrics(self, name: str, key: str, value: Any) -> Manifest:
        """Set ``metrics[key]`` of ``name``'s manifest (a check run after training) and
        return the manifest; ``RegistryError`` if unknown.

        The file is replaced atomically and keeps its modification time, so ``revision``
        (which says the weights were committed again) does not change.
        """
        manifest = self.get(name)
        manifest.metrics[key] = value
        path = self.path(name) / MANIFEST
        stamp = path.stat()
        partial = path.with_name(f".{MANIFEST}.{os.getpid()}.partial")
        partial.write_text(json.dumps(manifest.to_dict(), indent=2))
        os.utime(partial, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
        os.replace(partial, path)
        return manifest

    def check_free(self, name: str, overwrite: bool) -> None:
        """Refuse an existing name unless ``overwrite``, before any training starts."""
        if self.exists(name) and not overwrite:
            raise RegistryError(f"adapter {name!r} already exists; pass --overwrite to replace it")

    def staging(self, name: str) -> Path:
        """An empty folder to write a new adapter into (not yet visible)."""
        folder = self.root / ".staging" / validate_name(name)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return folder

    def commit(self, staging: Path, manifest: Manifest, overwrite: bool = False) -> Path:
        """Write the manifest and move the staged adapter into place atomically."""
        self.check_free(manifest.name, overwrite)
        manifest.created = manifest.created or time.strftime("%Y-%m-%dT%H:%M:%S%z")
        manifest.files = sorted(
            str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file()
        )
        (staging / MANIFEST).write_text(json.dumps(manifest.to_dict(), indent=2))
        target = self.path(manifest.name)
        if target.exists():
            trash = self.root / ".staging" / f"{manifest.name}.old"
            shutil.rmtree(trash, ignore_errors=True)
            target.rename(trash)
            staging.rename(target)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            staging.rename(target)
        return target
