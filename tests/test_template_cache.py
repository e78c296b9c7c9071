"""Compiled templates are kept between runs (``storage.cache``): a second process renders the
pages and the digest without compiling, the same bytes; an edited template is compiled
again; a damaged, unsafe or impossible cache never fails a render."""

from __future__ import annotations

import dataclasses
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import jinja2
import pytest

from iomfeed import notices, template_cache
from iomfeed.config import Config
from iomfeed.digest import render
from iomfeed.digest.render import render_digest
from iomfeed.pipeline import publish
from iomfeed.preflight import warnings
from iomfeed.publish import site
from iomfeed.runtime import open_store

from .conftest import NOW
from .digestkit import add_items, digest_config
from .test_digest_render import CONTENT


def new_process() -> None:
    """Forget what this process compiled and which caches it opened, as a new run would."""
    template_cache._cache.cache_clear()
    site.environment.cache_clear()
    render.environment.cache_clear()
    notices._environment.cache_clear()


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    new_process()
    yield
    new_process()


@pytest.fixture
def compiled(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the template files Jinja2 compiles from here on."""
    names: list[str] = []
    compile_source = jinja2.Environment.compile

    def spy(self: jinja2.Environment, source: str, name: str | None = None, *a: object) -> object:
        if name is not None:  # a file's template (a subject line's string has no name)
            names.append(name)
        return compile_source(self, source, name, *a)  # type: ignore[call-overload]

    monkeypatch.setattr(jinja2.Environment, "compile", spy)
    return names


def cache_config(tmp_path: Path, cache: str = "cache", **digest: object) -> Config:
    config = digest_config(tmp_path, **({"digest": digest} if digest else {}))
    return dataclasses.replace(config, storage=dataclasses.replace(config.storage, cache=cache))


def published(config: Config) -> dict[str, bytes]:
    with open_store(config) as store:
        publish(config, store=store, now=NOW)
    folder = config.feeds_path
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*.html")}


def test_a_second_run_renders_the_pages_and_the_digest_without_compiling(
    tmp_path: Path, compiled: list[str]
) -> None:
    config = cache_config(tmp_path)
    with open_store(config) as store:
        add_items(store, range(30), NOW)
    pages = published(config)
    digest = render_digest(CONTENT, "sq", config)
    assert {"site/index.html.j2", "site/month.html.j2", "digest.html.j2"} <= set(compiled)
    folder = tmp_path / "cache" / template_cache.TEMPLATES
    assert len(list(folder.iterdir())) >= len(set(compiled))
    for level in (folder.parent, folder):
        assert stat.S_IMODE(level.stat().st_mode) == 0o700  # its files are code to run

    new_process()
    compiled.clear()
    assert published(config) == pages
    assert render_digest(CONTENT, "sq", config) == digest
    assert compiled == []


def test_a_template_edited_between_runs_is_compiled_again(
    tmp_path: Path, compiled: list[str]
) -> None:
    override = tmp_path / "my-templates"
    override.mkdir()
    footer = override / "_footer.html.j2"
    footer.write_text('<td class="footer">Custom A</td>\n', encoding="utf-8")
    config = cache_config(tmp_path, templates=str(override))
    assert "Custom A" in render_digest(CONTENT, "en", config).html
    new_process()
    stamp = footer.stat()
    footer.write_text('<td class="footer">Custom B</td>\n', encoding="utf-8")
    os.utime(footer, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # same size, same time
    compiled.clear()
    html = render_digest(CONTENT, "en", config).html
    assert "Custom B" in html and "Custom A" not in html
    assert "_footer.html.j2" in compiled


def test_a_damaged_cache_is_compiled_again_and_mended(tmp_path: Path, compiled: list[str]) -> None:
    config = cache_config(tmp_path)
    first = render_digest(CONTENT, "en", config)
    entries = list((tmp_path / "cache" / template_cache.TEMPLATES).iterdir())
    magic = len(jinja2.bccache.bc_magic)
    for i, entry in enumerate(entries):
        data = entry.read_bytes()
        # Cut inside the source's hash (a pickle), cut inside the code, or not one at all.
        damaged = [data[: magic + 5], data[: len(data) // 2], b"not a cache entry"]
        entry.write_bytes(damaged[i % 3])
    new_process()
    compiled.clear()
    assert render_digest(CONTENT, "en", config) == first
    assert "digest.html.j2" in compiled
    new_process()
    compiled.clear()
    assert render_digest(CONTENT, "en", config) == first
    assert compiled == []  # written again, whole


def test_without_the_key_nothing_is_kept(tmp_path: Path) -> None:
    config = cache_config(tmp_path, cache="")
    assert Config().storage.cache == ""  # a file that leaves the key out keeps no cache
    assert template_cache.template_cache(config, "digest") is None
    render_digest(CONTENT, "en", config)
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("unsafe", ["others write", "a link", "a file"])
def test_a_folder_not_safe_to_run_code_from_is_not_used(
    tmp_path: Path, unsafe: str, caplog: pytest.LogCaptureFixture, compiled: list[str]
) -> None:
    folder = tmp_path / "cache" / template_cache.TEMPLATES
    folder.parent.mkdir(mode=0o700)
    if unsafe == "others write":
        folder.mkdir()
        folder.chmod(0o777)
        said = f"others may write to {folder}"
    elif unsafe == "a link":
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir(mode=0o700)
        folder.symlink_to(elsewhere)
        said = f"{folder} is not a folder"
    else:
        folder.write_text("x", encoding="utf-8")
        said = f"{folder} is not a folder"
    config = cache_config(tmp_path)
    with caplog.at_level(logging.WARNING, logger="iomfeed"):
        assert template_cache.template_cache(config, "digest") is None
        render_digest(CONTENT, "en", config)
    assert [r.getMessage() for r in caplog.records] == [
        f'storage.cache: {said}; the cache is not used (cache = "" turns it off)'
    ]
    assert "digest.html.j2" in compiled
    assert [w for w in warnings(config) if w.startswith("storage.cache")] == [
        f'storage.cache: {said}, so it is not used (cache = "" turns it off)'
    ]
    if unsafe != "a file":
        assert list(Path(os.path.realpath(folder)).iterdir()) == []  # nothing written there


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs chown")
def test_a_folder_of_another_user_is_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "cache" / template_cache.TEMPLATES
    folder.mkdir(mode=0o700, parents=True)
    os.chown(folder, 65534, 65534)
    config = cache_config(tmp_path)
    with caplog.at_level(logging.WARNING, logger="iomfeed"):
        assert template_cache.template_cache(config, "digest") is None
    assert f"{folder} belongs to user 65534, not to this one" in caplog.text
    assert any("belongs to user 65534" in w for w in warnings(config))


def test_a_cache_that_cannot_be_made_only_costs_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    config = cache_config(tmp_path, cache="a-file/cache")
    assert warnings(config)[-1] == (
        f"storage.cache: {tmp_path / 'a-file' / 'cache'} cannot be made:"
        f' {tmp_path / "a-file"} is not writable (cache = "" turns it off)'
    )
    with caplog.at_level(logging.WARNING, logger="iomfeed"):
        assert "IOM" in render_digest(CONTENT, "en", config).html
    assert caplog.records == []  # said at info level: only slower, nothing to mend
    assert template_cache.template_cache(config, "digest") is None


def test_an_entry_is_read_through_the_folder_checked_not_one_put_in_its_place(
    tmp_path: Path, compiled: list[str]
) -> None:
    """Whoever may write to the folder around the cache renames it after the check and puts
    a folder of their own there, with an entry for the index page (its name and the
    source's hash can be worked out from the public templates): it is never read."""
    import marshal
    import pickle

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # anyone's, and not sticky
    config = cache_config(tmp_path, cache=str(shared / "cache"))
    cache = template_cache.template_cache(config, "pages")
    assert cache is not None
    os.rename(shared / "cache", shared / "moved")
    theirs = tmp_path / "theirs"
    (theirs / template_cache.TEMPLATES).mkdir(parents=True)
    (shared / "cache").symlink_to(theirs)
    env = site.environment(cache)
    name = "site/digests.html.j2"
    source, filename, _ = env.loader.get_source(env, name)  # type: ignore[union-attr]
    bucket = cache.get_bucket(env, name, filename, source)
    planted = jinja2.Environment().compile("planted code ran", name, filename)
    with (theirs / template_cache.TEMPLATES / f"{bucket.key}.cache").open("wb") as f:
        f.write(jinja2.bccache.bc_magic)
        pickle.dump(bucket.checksum, f, 2)
        marshal.dump(planted, f)
    compiled.clear()
    rendered = env.get_template(name)
    assert name in compiled  # compiled from its source, not taken from their folder
    assert "planted" not in rendered.render(
        title="t",
        description="d",
        language="en",
        home_url="https://example.org/",
        author="a",
        feeds=(),
        digests=(),
        feed_url="f",
        updated=NOW,
        items=[],
        words=site.pages_words(),
        website="w",
        fw=None,
        form=None,
    )
    assert (shared / "moved" / template_cache.TEMPLATES / f"{bucket.key}.cache").exists()


def test_environments_that_compile_differently_never_share_an_entry(tmp_path: Path) -> None:
    config = cache_config(tmp_path)
    plain, escaping = (template_cache.template_cache(config, f) for f in ("plain", "escaping"))
    loader = jinja2.DictLoader({"t.html": "Hi {{ who }}"})
    first = jinja2.Environment(loader=loader, autoescape=False, bytecode_cache=plain)
    assert first.get_template("t.html").render(who="<b>") == "Hi <b>"
    second = jinja2.Environment(loader=loader, autoescape=True, bytecode_cache=escaping)
    assert second.get_template("t.html").render(who="<b>") == "Hi &lt;b&gt;"


def test_check_says_nothing_of_a_cache_it_can_make(tmp_path: Path) -> None:
    config = cache_config(tmp_path)
    assert not [w for w in warnings(config) if w.startswith("storage.cache")]
    assert not (tmp_path / "cache").exists()  # check makes nothing
