"""The documented configuration shipped inside the package: ``iomfeed init`` writes it out,
``iomfeed demo`` runs on it. It is the repository's top-level ``config.toml`` (the package's
``config.toml`` is a link to it, so there is one copy), installed with the package."""

from __future__ import annotations

import importlib.resources
import os
from importlib.resources.abc import Traversable
from pathlib import Path

from .errors import IomfeedError

NAME = "config.toml"


class ExistsError(IomfeedError):
    """``iomfeed init`` would overwrite a file."""


class NotWrittenError(IomfeedError):
    """``iomfeed init`` could not write the file (or make its folder)."""


def shipped_config() -> Traversable:
    """The packaged config.toml (found through importlib.resources, installed or not)."""
    return importlib.resources.files("iomfeed") / NAME


def shipped_text() -> str:
    return shipped_config().read_text(encoding="utf-8")


def write_config(path: Path, *, force: bool = False) -> Path:
    """Write the shipped configuration to ``path`` (a folder gets a config.toml in it);
    an existing file is kept unless ``force``."""
    if path.is_dir():
        path = path / NAME
    data = shipped_config().read_bytes()
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, flags, 0o644)
        except FileExistsError:
            raise ExistsError(
                f"{path}: already exists; not overwriting it (iomfeed init --force replaces it)"
            ) from None
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    except OSError as exc:  # a read-only or full disk, a folder not ours
        raise NotWrittenError(f"{path}: could not be written ({exc.strerror or exc})") from None
    return path
