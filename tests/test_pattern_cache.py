"""The libraries' regular expressions, compiled once per install: a pattern built from the
cache is the pattern :mod:`re` builds, whatever the file holds, a pattern that warns still
warns, and the command line installs the cache before its first import."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import fresh_python

#: Patterns of every shape: groups named and not, inline and given flags, verbose text,
#: lookarounds, conditionals, possessive and atomic parts (3.11), bytes and Unicode.
CORPUS: list[tuple[str | bytes, int]] = [
    (r"(?P<year>\d{4})-(?P<month>\d\d)(?:-(?P<day>\d\d))?", 0),
    (r"(?i)latest\s+news", 0),
    (r"^\s*#.*$", re.M),
    (
        r"""(?x) (?P<scheme> https? ) :// [^/\s]+  # host
         (?: / [^\s]* )?""",
        0,
    ),
    (r"(?<=\bIOM\s)Albania(?!\w)", 0),
    (r"(<)?(\w+@\w+(?:\.\w+)+)(?(1)>|$)", 0),
    (r"(?>a+)b|c++d", 0),
    (r"[A-Za-zÀ-ÿëç]+", re.I),
    (r"\w+", re.A),
    (rb"\r\n\.", 0),
    (rb"(?P<name>[!-9;-~]+):", re.I),
    ("\\\\[\\\\\\]]", 0),
    (r"(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)\10", 0),
    (r"ë|ç", re.I | re.U),
    ("", 0),
]

#: What a child process reports: for each pattern it compiled (the corpus, then everything
#: some real libraries compile while they are imported), whether the cache's is :mod:`re`'s.
PROBE = """
import json, re, sys, warnings
from pathlib import Path
from iomfeed import pattern_cache
cache = pattern_cache.install(Path(sys.argv[1]))
corpus = [(p.encode("latin-1") if b else p, f) for p, b, f in json.loads(sys.argv[2])]
for pattern, flags in corpus:
    re.compile(pattern, flags)
import email.parser, http.client, bs4, jinja2, soupsieve
soupsieve.compile("div.news > a[href^='/news/']:not(.hidden)")
loaded, compiled, unchecked = cache.loaded, cache.compiled, len(cache.unchecked)
saved = pattern_cache.save()  # keeps the patterns whose parse gives no warning, and writes
differ = []
for pattern, flags in sorted(cache.used, key=repr):
    ours, theirs = cache.compile(pattern, flags), cache.original(pattern, flags)
    same = (
        ours == theirs and ours.pattern == theirs.pattern and ours.flags == theirs.flags
        and ours.groups == theirs.groups and ours.groupindex == theirs.groupindex
    )
    if not same:
        differ.append(repr((pattern, flags)))
keys = {repr(k) for k in cache.used}
print(json.dumps({
    "loaded": loaded, "compiled": compiled, "unchecked": unchecked, "used": len(cache.used),
    "differ": differ, "corpus": all(repr((p, f)) in keys for p, f in corpus), "saved": saved,
}))
"""


def _probe(cache: Path, **env: str) -> dict[str, Any]:
    corpus = [
        (p.decode("latin-1") if isinstance(p, bytes) else p, isinstance(p, bytes), f)
        for p, f in CORPUS
    ]
    out = fresh_python(PROBE, str(cache), json.dumps(corpus), env=env).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def test_patterns_built_from_the_cache_are_the_patterns_re_builds(tmp_path: Path) -> None:
    cache = tmp_path / "patterns.bin"
    first = _probe(cache)
    assert first["loaded"] == 0 and first["saved"] is True and cache.is_file()
    assert first["corpus"] and first["used"] > 100  # soupsieve alone compiles dozens
    assert first["differ"] == [] and first["unchecked"] > 3  # the conditional, soupsieve's
    second = _probe(cache)
    assert second["loaded"] >= first["used"] and second["compiled"] == 0
    assert second["unchecked"] == 0  # each checked once: none of them warns
    assert second["used"] == first["used"] and second["saved"] is False
    assert second["differ"] == []  # built from the file's code, checked against re's


def test_str_and_bytes_patterns_of_one_text_stay_apart(tmp_path: Path) -> None:
    script = (
        "import json, re, sys\n"
        "from pathlib import Path\n"
        "from iomfeed import pattern_cache\n"
        "pattern_cache.install(Path(sys.argv[1]))\n"
        "a, b = re.compile('n(e)ws', re.I), re.compile(b'n(e)ws', re.I)\n"
        "c = re.compile('n(e)ws')\n"
        "pattern_cache.save()\n"
        "print(json.dumps([type(a.pattern).__name__, type(b.pattern).__name__,"
        " bool(a.match('NEWS')), bool(b.match(b'NEWS')), c.match('NEWS') is None,"
        " a.flags, b.flags, c.flags]))\n"
    )
    runs = [json.loads(fresh_python(script, str(tmp_path / "p.bin")).stdout) for _ in range(2)]
    flags = [re.compile("n(e)ws", re.I).flags, re.compile(b"n(e)ws", re.I).flags]
    assert runs[0] == runs[1] == ["str", "bytes", True, True, True, *flags, re.U]


#: Patterns whose parsing warns: a possible nested set, a possible set intersection.
WARNS = """
import json, re, sys, warnings
from pathlib import Path
from iomfeed import pattern_cache
if sys.argv[1] != "-":
    cache = pattern_cache.install(Path(sys.argv[1]))
got = []
for text in ("[[a]b]", "[a&&b]"):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        re.compile(text)
    got += [(w.category.__name__, str(w.message), w.filename, w.lineno) for w in caught]
re.purge()
if sys.argv[1] != "-":
    re.compile("x{2,}")  # something to keep, so that a file is written
    got.append(len(cache.known))
    got.append(pattern_cache.save())
print(json.dumps(got))
"""


def test_a_pattern_that_warns_warns_every_time_and_is_not_kept(tmp_path: Path) -> None:
    cache = tmp_path / "p.bin"
    plain = json.loads(fresh_python(WARNS, "-").stdout)
    assert [w[0] for w in plain] == ["FutureWarning", "FutureWarning"]
    first = json.loads(fresh_python(WARNS, str(cache)).stdout)
    second = json.loads(fresh_python(WARNS, str(cache)).stdout)
    # The same warnings, pointing at the same line as without the cache, in both runs.
    assert first[:2] == second[:2] == plain
    assert first[2] == second[2] == 1 and first[3] is True and second[3] is False
    assert b"[[a]b]" not in cache.read_bytes() and b"[a&&b]" not in cache.read_bytes()


def test_a_pattern_that_only_looks_as_if_it_could_warn_is_kept(tmp_path: Path) -> None:
    """A comment's ``--`` outside any set, a conditional: checked once by the parser, then
    kept; with another thread running the check waits for a later save."""
    script = (
        "import json, re, sys, threading\n"
        "from pathlib import Path\n"
        "from iomfeed import pattern_cache\n"
        "cache = pattern_cache.install(Path(sys.argv[1]))\n"
        "texts = ['<!--(.*?)-->', '(<)?a(?(1)>)', '(?x) a -- b  # [[ in a comment']\n"
        "for text in texts:\n"
        "    re.compile(text)\n"
        "stop = threading.Event()\n"
        "other = threading.Thread(target=stop.wait)\n"
        "other.start()\n"
        "during = [pattern_cache.save(), sorted(k[0] for k in cache.known if k[0] in texts)]\n"
        "stop.set()\n"
        "other.join()\n"
        "after = [pattern_cache.save(), sorted(k[0] for k in cache.known if k[0] in texts)]\n"
        "print(json.dumps([cache.loaded, during, after]))\n"
    )
    cache = tmp_path / "p.bin"
    texts = sorted(["<!--(.*?)-->", "(<)?a(?(1)>)", "(?x) a -- b  # [[ in a comment"])
    first = json.loads(fresh_python(script, str(cache)).stdout)
    assert first == [0, [False, []], [True, texts]]
    second = json.loads(fresh_python(script, str(cache)).stdout)
    assert second[0] >= 3 and second[1:] == [[False, texts], [False, texts]]


def test_debug_output_is_re_s_own(tmp_path: Path) -> None:
    script = (
        "import re, sys\n"
        "from pathlib import Path\n"
        "from iomfeed import pattern_cache\n"
        "if sys.argv[1] != '-':\n"
        "    pattern_cache.install(Path(sys.argv[1]))\n"
        "re.compile('(?P<a>x)+y', re.DEBUG)\n"
    )
    plain = fresh_python(script, "-").stdout
    assert "SUBPATTERN" in plain
    for _ in range(2):
        assert fresh_python(script, str(tmp_path / "p.bin")).stdout == plain
    assert not (tmp_path / "p.bin").exists()  # compiled by re itself: nothing new to keep


def test_a_torn_or_foreign_file_is_ignored_and_written_anew(tmp_path: Path) -> None:
    cache = tmp_path / "p.bin"
    _probe(cache)
    good = cache.read_bytes()
    damaged = [
        good[:-10] + bytes(b ^ 0xFF for b in good[-10:]),  # payload flipped: checksum
        good[: len(good) // 2],  # torn
        good.replace(b"iomfeed pattern cache 1", b"iomfeed method cache 1", 1),  # another's
        good.replace(sys.version.encode()[:6], b"2.7.18", 1),  # another interpreter's
        b"",
    ]
    for data in damaged:
        cache.write_bytes(data)
        result = _probe(cache)
        assert (result["loaded"], result["saved"], result["differ"]) == (0, True, []), data[:40]
        assert cache.read_bytes() == good  # the same patterns: the same file


def test_entries_of_the_wrong_shape_are_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from iomfeed import pattern_cache, pycache_file

    monkeypatch.setattr(sys, "dont_write_bytecode", False)

    good: tuple[Any, int] = ((0, [1, 2], 0, {}, (None,)), 3)
    cache = tmp_path / "p.bin"
    held = {
        ("a", 0): good,
        ("b", "0"): good,  # flags not a number
        (1, 0): good,  # not a pattern
        ("c",): good,  # no flags
        ("d", 0): ((0, [1], 0, {}), 0),  # an entry too short
        ("e", 0): ((0, (1,), 0, {}, ()), 0),  # code not a list
        ("f", 0): (good[0], "3"),  # age not a number
        ("g", 0): good[0],  # no age
    }
    assert pycache_file.write(cache, pattern_cache._KIND, held)
    assert pattern_cache._read(cache) == {("a", 0): good}
    assert pycache_file.write(cache, pattern_cache._KIND, ["not", "a", "mapping"])
    assert pattern_cache._read(cache) == {}


def test_nothing_is_written_without_bytecode(tmp_path: Path) -> None:
    cache = tmp_path / "p.bin"
    result = _probe(cache, PYTHONDONTWRITEBYTECODE="1")
    assert result["saved"] is False and result["differ"] == [] and not cache.exists()


def test_a_run_that_compiles_from_data_keeps_what_it_used_up_to_the_limit(
    tmp_path: Path,
) -> None:
    script = (
        "import json, re, sys\n"
        "from pathlib import Path\n"
        "from iomfeed import pattern_cache\n"
        "pattern_cache.LIMIT = 50\n"
        "cache = pattern_cache.install(Path(sys.argv[1]))\n"
        "for i in range(int(sys.argv[2])):\n"
        "    re.compile(f'item-{i}')\n"
        "print(json.dumps([cache.loaded, pattern_cache.save()]))\n"
    )
    cache = tmp_path / "p.bin"
    assert json.loads(fresh_python(script, str(cache), "40").stdout) == [0, True]
    assert json.loads(fresh_python(script, str(cache), "120").stdout) == [40, True]
    assert json.loads(fresh_python(script, str(cache), "1").stdout)[0] == 50


def test_a_pattern_no_run_uses_ages_out(tmp_path: Path) -> None:
    """Texts that differ in every process (built from a set's order) must not pile up."""
    script = (
        "import json, re, sys\n"
        "from pathlib import Path\n"
        "from iomfeed import pattern_cache\n"
        "pattern_cache.KEEP = 2\n"
        "cache = pattern_cache.install(Path(sys.argv[1]))\n"
        "for text in sys.argv[2:]:\n"
        "    re.compile(text)\n"
        "pattern_cache.save()\n"
        "print(json.dumps(sorted(k[0] for k in cache.known if k[0].startswith('t-'))))\n"
    )
    cache = tmp_path / "p.bin"
    runs = [
        json.loads(fresh_python(script, str(cache), *texts).stdout)
        for texts in (["t-kept", "t-a"], ["t-kept", "t-b"], ["t-c"], ["t-d"], ["t-kept", "t-e"])
    ]
    assert runs == [
        ["t-a", "t-kept"],
        ["t-a", "t-b", "t-kept"],
        ["t-a", "t-b", "t-c", "t-kept"],  # t-a unused in two saves: still kept
        ["t-b", "t-c", "t-d", "t-kept"],  # three: dropped
        ["t-c", "t-d", "t-e", "t-kept"],  # t-kept used again after two: kept throughout
    ]


def test_someone_elses_stand_in_is_left_alone_and_uninstall_gives_re_its_own() -> None:
    from re import _compiler  # type: ignore[attr-defined]

    from iomfeed import pattern_cache

    assert pattern_cache.active() is None  # the tests run without it
    own = _compiler.compile

    def theirs(p: Any, flags: int = 0) -> Any:
        return own(p, flags)

    _compiler.compile = theirs
    try:
        assert pattern_cache.install(Path("unused")) is None
        assert _compiler.compile is theirs
    finally:
        _compiler.compile = own
    cache = pattern_cache.install(None)
    try:
        assert cache is not None and pattern_cache.active() is cache
        assert _compiler.compile == cache.compile
        re.purge()
        assert re.compile("(?P<x>unique to this test)").groupindex == {"x": 1}
        assert cache.compiled == 1 and pattern_cache.save() is False  # no file to keep
    finally:
        pattern_cache.uninstall()
    assert pattern_cache.active() is None and _compiler.compile is own


def test_the_command_line_installs_it_before_its_first_import(tmp_path: Path) -> None:
    """Two runs of the entry point, whose command loads the configuration's code and
    bs4 (and soupsieve): the second compiles nothing."""
    script = (
        "import json, sys, types\n"
        "from pathlib import Path\n"
        "from iomfeed import pattern_cache\n"
        f"pattern_cache.default_path = lambda: Path({str(tmp_path / 'p.bin')!r})\n"
        "def command() -> int:\n"
        "    import importlib\n"
        "    importlib.import_module('iomfeed.config')\n"
        "    importlib.import_module('bs4')\n"
        "    return 0\n"
        "stand_in = types.ModuleType('iomfeed.cli')\n"
        "stand_in.main = command\n"
        "sys.modules['iomfeed.cli'] = stand_in\n"
        "from iomfeed.__main__ import main\n"
        "main()\n"
        "c = pattern_cache.active()\n"
        "print(json.dumps([c.loaded, c.compiled, len(c.used)]))\n"
    )
    runs = [json.loads(fresh_python(script, cwd=tmp_path).stdout) for _ in range(2)]
    (loaded_1, compiled_1, used_1), (loaded_2, compiled_2, used_2) = runs
    assert loaded_1 == 0 and compiled_1 == 0 and used_1 > 50  # saved on the way out
    assert loaded_2 == used_1 and compiled_2 == 0 and used_2 == used_1
