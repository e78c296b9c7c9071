"""The records' generated methods, compiled once per install: a class built from the cache is
the class dataclasses builds, whatever the file holds, and the command line installs the
cache before its first record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, fresh_python

#: Records of every shape the codebase uses, and a few more.
RECORDS = """
from __future__ import annotations
import dataclasses
from dataclasses import InitVar, dataclass, field
from typing import ClassVar

@dataclass(frozen=True, slots=True)
class Plain:
    name: str
    count: int = 0
    tags: tuple[str, ...] = ()

@dataclass(frozen=True, slots=True, kw_only=True)
class Keywords:
    url: str
    retries: int = 3
    headers: dict[str, str] = field(default_factory=dict)

@dataclass(order=True)
class Ordered:
    rank: int
    label: str = field(default="", compare=False)
    kind: ClassVar[str] = "ordered"
    seed: InitVar[int] = 0

    def __post_init__(self, seed: int) -> None:
        self.rank += seed

@dataclass(frozen=True, slots=True)
class Child(Plain):
    extra: str = "x"
"""

#: What a child process reports about those classes, the cache's counts and the file.
PROBE = """
import json, sys, dataclasses
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from iomfeed import method_cache
cache = method_cache.install(Path(sys.argv[1])) if sys.argv[1] != "-" else None
import records as r
a, b = r.Plain("a", 1), r.Plain("a", 1)
k = r.Keywords(url="u")
o1, o2 = r.Ordered(2, "x", seed=1), r.Ordered(3, "y")
c = r.Child("c", 2, ("t",), "e")
try:
    a.name = "b"
    frozen = "no"
except dataclasses.FrozenInstanceError as exc:
    frozen = repr(exc)
out = {
    "repr": [repr(x) for x in (a, k, o1, c)],
    "eq": [a == b, hash(a) == hash(b), o1 == o2, o1 < o2, c == a],
    "frozen": frozen,
    "annotations": [
        repr(cls.__init__.__annotations__) for cls in (r.Plain, r.Keywords, r.Ordered, r.Child)
    ],
    "defaults": [repr(cls.__init__.__defaults__) for cls in (r.Plain, r.Ordered, r.Child)],
    "kwdefaults": repr(r.Keywords.__init__.__kwdefaults__),
    "qualnames": [f.__qualname__ for f in (r.Plain.__init__, r.Plain.__repr__, r.Child.__eq__)],
    "slots": [r.Plain.__slots__, r.Child.__slots__],
    "fields": [[f.name for f in dataclasses.fields(cls)] for cls in (r.Plain, r.Keywords, r.Child)],
}
saved = method_cache.save()
out["counts"] = None if cache is None else [
    cache.loaded, cache.compiled if not saved else -1, len(cache.used), saved
]
print(json.dumps(out))
"""


def _python(
    script: str, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> str:
    """What ``script`` printed, run by a fresh interpreter (:func:`.conftest.fresh_python`)."""
    return fresh_python(script, *args, cwd=cwd, env=env).stdout


def _probe(where: Path, cache: Path | None, **env: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(
        _python(PROBE, str(cache) if cache else "-", str(where), env=env)
    )
    return result


@pytest.fixture
def records(tmp_path: Path) -> Path:
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "records.py").write_text(RECORDS, encoding="utf-8")
    return folder


def _without_counts(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "counts"}


def test_classes_built_from_the_cache_are_the_classes_dataclasses_builds(
    records: Path, tmp_path: Path
) -> None:
    plain = _probe(records, None)
    assert plain["counts"] is None
    assert plain["frozen"].startswith("FrozenInstanceError")
    cache = tmp_path / "cache" / "methods.bin"
    first = _probe(records, cache)
    loaded, _, used, saved = first["counts"]
    assert (loaded, saved) == (0, True) and used >= 12  # four classes, several methods each
    assert cache.is_file()
    second = _probe(records, cache)
    loaded, compiled, used_again, saved = second["counts"]
    assert loaded >= used and compiled == 0 and used_again == used and saved is False
    assert _without_counts(first) == _without_counts(second) == _without_counts(plain)
    # The generated __init__ has the fields' own annotations, as without the cache: a
    # compile that took this module's future flags would give the local names as strings.
    assert "'name': 'str'" in plain["annotations"][0]


def test_a_torn_or_foreign_file_is_ignored_and_written_anew(records: Path, tmp_path: Path) -> None:
    cache = tmp_path / "methods.bin"
    plain = _without_counts(_probe(records, None))
    _probe(records, cache)
    good = cache.read_bytes()
    damaged = [
        good[:-10] + bytes(b ^ 0xFF for b in good[-10:]),  # payload flipped: checksum
        good[: len(good) // 2],  # torn
        good.replace(b"iomfeed method cache 1", b"iomfeed method cache 9", 1),
        good.replace(sys.version.encode()[:6], b"2.7.18", 1),  # another interpreter's
        b"",
    ]
    for data in damaged:
        cache.write_bytes(data)
        result = _probe(records, cache)
        loaded, _, _, saved = result["counts"]
        assert (loaded, saved) == (0, True), data[:40]
        assert _without_counts(result) == plain
        assert cache.read_bytes() == good  # the same texts, the same code: the same file


def test_an_optimizing_interpreter_keeps_a_file_of_its_own(records: Path, tmp_path: Path) -> None:
    """``python -O`` compiles the same text otherwise where it asserts: it neither reads
    the plain interpreter's file nor shares its default name."""
    cache = tmp_path / "methods.bin"
    _probe(records, cache)
    plain = cache.read_bytes()
    optimized = _probe(records, cache, PYTHONOPTIMIZE="1")
    assert optimized["counts"][0] == 0  # not read
    assert cache.read_bytes() != plain and _probe(records, cache)["counts"][0] == 0
    names = subprocess.run(
        [
            sys.executable,
            "-O",
            "-c",
            "from iomfeed import method_cache as m; print(m.default_path())",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        timeout=60,
        check=True,
    ).stdout
    assert names.strip().endswith(f".{sys.implementation.cache_tag}.opt-1.bin")


def test_nothing_is_written_without_bytecode_or_to_a_folder_that_refuses(
    records: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "methods.bin"
    result = _probe(records, cache, PYTHONDONTWRITEBYTECODE="1")
    assert result["counts"][3] is False and not cache.exists()
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folder would be", encoding="utf-8")
    result = _probe(records, blocked / "methods.bin")
    assert result["counts"][3] is False
    assert blocked.read_text(encoding="utf-8") == "a file where the folder would be"


def test_a_folder_where_a_file_should_be_makes_no_part_file_linger(
    records: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "methods.bin"
    cache.mkdir()  # os.replace onto a folder fails
    result = _probe(records, cache)
    assert result["counts"][3] is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["code", "methods.bin"]


def test_someone_elses_stand_in_is_left_alone() -> None:
    import dataclasses

    from iomfeed import method_cache

    assert method_cache.active() is None  # the tests run without it
    theirs = exec
    setattr(dataclasses, "exec", theirs)  # noqa: B010
    try:
        assert method_cache.install(Path("unused")) is None
        assert vars(dataclasses)["exec"] is theirs
    finally:
        delattr(dataclasses, "exec")


def test_the_command_line_installs_it_before_its_first_record(tmp_path: Path) -> None:
    """Two runs of the entry point: the second builds the configuration's records, imported
    by the command line's own modules, from what the first compiled."""
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from iomfeed import method_cache\n"
        f"method_cache.default_path = lambda: Path({str(tmp_path / 'm.bin')!r})\n"
        "sys.argv = ['iomfeed', 'init', '--help']\n"
        "from iomfeed.__main__ import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "from iomfeed.config import Config\n"
        "import dataclasses\n"
        "names = [f.name for f in dataclasses.fields(Config)]\n"
        "c = method_cache.active()\n"
        "hit = any('def __init__(' in t and all(n in t for n in names) for t in c.used)\n"
        "print(json.dumps([c.loaded, len(c.used), hit]))\n"
    )
    runs = [json.loads(_python(script, cwd=tmp_path).splitlines()[-1]) for _ in range(2)]
    (loaded_1, used_1, hit_1), (loaded_2, used_2, hit_2) = runs
    assert loaded_1 == 0 and hit_1 and hit_2
    assert used_2 == used_1 and loaded_2 >= used_1 > 40
