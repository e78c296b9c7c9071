"""Whether a publish would write anything: the inputs it reads, summed up in one mark.

A cycle of ``run`` or ``serve`` whose fetch changed nothing publishes the same bytes again;
rendering them (Jinja2, feedgen, Babel's dates) costs more than the rest of the cycle. The
mark covers what a publish reads: the store's change counters (items and digests, kept by
triggers), the configuration, the files of ``digest.languages_dir`` and of
``digest.templates`` (the digest archive's pages are rendered with the templates found
there), each by name, size and modification time, and iomfeed's version. When the mark is
the one the last complete publish left and every file it recorded is still in place,
untouched (size and modification time), the publish is skipped. An explicit ``iomfeed
publish`` reads the store every time, and renders each file whose own fingerprint moved
(:mod:`.build`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Config
    from ..store import Store

#: The settings key of the mark the last complete publish left.
SETTING = "publish.inputs"


def mark(config: Config, store: Store) -> str:
    """A digest of everything a publish reads."""
    from .. import __version__

    parts = [__version__, repr(config), repr(sorted(store.changes().items()))]
    for name, folder in (
        ("languages", config.languages_path),
        ("templates", config.templates_path),
    ):
        if folder is not None and folder.is_dir():
            for path in sorted(folder.iterdir()):
                stat = path.stat()
                parts.append(f"{name}/{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


def unchanged(config: Config, store: Store, current: str) -> int | None:
    """The number of files the last publish left, when ``current`` is its mark and every
    one of them is still as it was written; else None (a publish is needed)."""
    if store.setting(SETTING) != current:
        return None
    recorded = store.published_files()
    if not recorded:
        return None
    folder: Path = config.feeds_path
    for path, entry in recorded.items():
        try:
            stat = os.stat(folder / path)
        except OSError:
            return None
        if (stat.st_size, stat.st_mtime_ns) != (entry.size, entry.mtime_ns):
            return None
    return len(recorded)
