"""The web forms end to end with real parts: `iomfeed serve` as a subprocess sending
through aiosmtpd, headless Chromium (driven over the DevTools protocol by Playwright; the
pages themselves have no JavaScript) filling the sign-up form, opening the confirmation
mail's link, pressing the button, changing language and categories on the preferences
page; then the next digest arrives in Albanian with only the category chosen. And every
form page looked at in Chromium at 1280 and 375 px in both languages, with screenshots
kept in test-artifacts/."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from iomfeed.demo.server import SnapshotServer
from iomfeed.store import Store

from .browser import browser, screenshot_path
from .smtp import PUBLIC_URL, Handler, free_port, smtp_config_edits, smtp_server
from .test_serve import Service, service_config
from .test_signup import link
from .test_web_forms import ANA, PREFIX, Site, confirmed, make_site

pytestmark = [pytest.mark.network, pytest.mark.slow]


def wait_for_mail(handler: Handler, count: int, svc: Service, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while len(handler.received) < count:
        assert time.monotonic() < deadline, f"no message {count}:\n{svc.log.read_text()}"
        assert svc.proc.poll() is None, svc.log.read_text()
        time.sleep(0.1)


def body_of(handler: Handler, n: int, kind: str = "plain") -> str:
    part = handler.received[n].message().get_body((kind,))
    assert part is not None
    return str(part.get_content())


def store_items_newest(folder: Path, count: int) -> list[Any]:
    with Store(folder / "iomfeed.db") as store:
        return store.items(limit=count)


def local(url: str, svc: Service) -> str:
    """A link of a message (at site.public_url) as the local service answers it: the
    same path and query, at 127.0.0.1 (nginx's part, in production)."""
    assert url.startswith(PUBLIC_URL), url
    parts = urlsplit(url)
    return svc.url(f"{parts.path}?{parts.query}")


def test_sign_up_confirm_and_choose_in_chromium_then_the_digest_is_albanian(
    site: Path, server: SnapshotServer, tmp_path: Path
) -> None:
    # One of the newest stories becomes Global, so that choosing Local leaves it out.
    page_file = site / "news" / "diaspora-mentors-support-young-entrepreneurs-shkoder-lezhe.html"
    text = page_file.read_text(encoding="utf-8")
    category = '<a href="/press-release-type/local">Local</a>'
    assert category in text
    page_file.write_text(
        text.replace(category, '<a href="/press-release-type/global">Global</a>'),
        encoding="utf-8",
    )
    global_story = f"{server.origin}/news/{page_file.stem}"
    with smtp_server() as (handler, smtp_port):
        port = free_port()
        config = service_config(
            server,
            tmp_path,
            port,
            fetch="0 0 1 1 *",  # only the cycle at start
            extra=smtp_config_edits(smtp_port),
        )
        svc = Service(config, port)
        try:
            svc.wait_for(lambda: svc.get("/")[0] == 200, "the first cycle's index.html")
            with browser() as chromium:
                page = chromium.new_page(viewport={"width": 1280, "height": 900})
                page.goto(svc.url(f"{PREFIX}/subscribe"))
                page.get_by_label("E-mail address").fill(ANA)
                page.get_by_label("Name (optional)").fill("Ana Hoxha")
                assert page.get_by_label("Local").is_checked()
                assert page.get_by_label("Global").is_checked()
                time.sleep(2.2)  # a person takes longer than subscribe.form_min_seconds
                with page.expect_navigation():
                    page.get_by_role("button", name="Subscribe").click()
                assert "Check your inbox" in page.content()

                wait_for_mail(handler, 1, svc)
                found = re.search(r"https://\S+/confirm\?t=\S+", body_of(handler, 0))
                assert found is not None
                page.goto(local(found.group(0), svc))
                with Store(tmp_path / "iomfeed.db") as store:  # the GET changed nothing
                    profile = store.profile(address=ANA)
                    assert profile is not None and profile.state.value == "pending"
                with page.expect_navigation():
                    page.get_by_role("button", name="Yes, subscribe me").click()
                assert "You are subscribed" in page.content()
                wait_for_mail(handler, 2, svc)  # the welcome

                with page.expect_navigation():
                    page.get_by_role("link", name="Choose what you get").click()
                assert "Your subscription" in page.content()
                page.get_by_label("Language of the digest").select_option("sq")
                page.get_by_label("Global").uncheck()
                with page.expect_navigation():
                    page.get_by_role("button", name="Save").click()
                assert "Ndryshimet tuaja u ruajtën" in page.content()
                assert page.locator("html").get_attribute("lang") == "sq"
                assert urlsplit(page.url).netloc == f"127.0.0.1:{port}"  # no redirect away
            with Store(tmp_path / "iomfeed.db") as store:
                profile = store.profile(address=ANA)
                assert profile is not None and profile.state.value == "active"
                assert profile.language == "sq" and profile.categories == ("Local",)

            sent = subprocess.run(
                [sys.executable, "-m", "iomfeed", "--config", str(config), "digest", "--send"],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert sent.returncode == 0, sent.stderr
            wait_for_mail(handler, 3, svc)
            digest = handler.received[2].message()
            assert digest["To"] == f"Ana Hoxha <{ANA}>"
            assert "Lajme nga IOM Shqipëri" in digest["Subject"]
            html = body_of(handler, 2, "html")
            assert '<html lang="sq"' in html and "Lexo më shumë" in html
            # Only the category chosen on the page: every story the digest links is Local,
            # though one of the newest (those a first digest shows) is Global.
            with Store(tmp_path / "iomfeed.db") as store:
                items = {i.url: i for i in store.items()}
            linked = [
                items[u] for u in dict.fromkeys(re.findall(r'href="([^"]+)"', html)) if u in items
            ]
            assert linked and all("Local" in i.categories for i in linked), [
                (i.title, i.categories) for i in linked
            ]
            newest = store_items_newest(tmp_path, 5)
            assert [i.url for i in newest if "Global" in i.categories] == [global_story]
            assert global_story not in html and "Globale" not in html
        finally:
            assert svc.terminate() == 0


@pytest.fixture
def looked_at(tmp_path: Path) -> Iterator[Site]:
    yield from make_site(tmp_path)


def test_every_form_page_in_chromium_at_1280_and_375_in_both_languages(
    looked_at: Site,
) -> None:
    site = looked_at
    prefs = confirmed(site)
    base = f"http://127.0.0.1:{site.port}{PREFIX}"
    pending = {}  # one pending sign-up per look, so each confirmation page has its button
    for width in (1280, 375):
        for lang in ("en", "sq"):
            site.sign_up(f"p{width}{lang}@example.org")
            [message] = site.outbox.new()
            pending[width, lang] = link(message, "confirm")
    pages = {
        "subscribe": f"{base}/subscribe",
        "preferences": f"{base}/preferences?t={prefs}",
        "invalid": f"{base}/preferences?t=1.AAAAAAAAAAAAAAAAAAAAAA",
    }
    with browser() as chromium:
        for width in (1280, 375):
            page = chromium.new_page(viewport={"width": width, "height": 900})
            for lang in ("en", "sq"):
                pages["confirm"] = f"{base}/confirm?t={pending[width, lang]}"
                for name, url in pages.items():
                    page.goto(url + ("&" if "?" in url else "?") + f"lang={lang}")
                    assert page.locator("html").get_attribute("lang") == lang
                    shot(page, f"forms-{name}-{lang}-{width}.png", width)
                # The answers: sent, confirmed, preferences saved, deleted.
                page.goto(f"{base}/subscribe?lang={lang}")
                page.get_by_label(site.pages_word(lang, "email_label")).fill("x@example.org")
                site.advance(seconds=3)
                page.get_by_role("button", name=site.pages_word(lang, "subscribe_button")).click()
                page.wait_for_load_state()
                shot(page, f"forms-sent-{lang}-{width}.png", width)
                page.goto(f"{base}/subscribe?lang={lang}")
                site.advance(seconds=3)  # no e-mail typed, but not too soon either
                page.get_by_role("button", name=site.pages_word(lang, "subscribe_button")).click()
                page.wait_for_load_state()
                assert page.locator("#email-error").is_visible()
                shot(page, f"forms-error-{lang}-{width}.png", width)
                page.goto(pages["preferences"] + f"&lang={lang}")
                page.get_by_role("button", name=site.pages_word(lang, "save_button")).click()
                page.wait_for_load_state()
                assert page.locator(".notice").is_visible()
                shot(page, f"forms-saved-{lang}-{width}.png", width)
                page.goto(pages["confirm"] + f"&lang={lang}")
                page.locator("main button").click()
                page.wait_for_load_state()
                assert page.locator("html").get_attribute("lang") == lang  # as it was read
                shot(page, f"forms-confirmed-{lang}-{width}.png", width)
            page.close()
    assert site.app.forms.worker.drain(10)


def shot(page: object, name: str, width: int) -> None:
    """A full-page screenshot, after checking nothing is wider than the window."""
    scroll = page.evaluate("document.documentElement.scrollWidth")  # type: ignore[attr-defined]
    assert scroll <= width, (name, scroll)
    page.screenshot(path=str(screenshot_path(name)), full_page=True)  # type: ignore[attr-defined]


def test_the_static_form_on_index_html_signs_up_in_two_steps_in_chromium(
    tmp_path: Path,
) -> None:
    """index.html (published, byte-stable, so without a form token) posts to the service,
    which answers with the form filled in and a fresh token; the second press signs up."""
    import dataclasses
    import threading
    from datetime import timedelta

    from iomfeed.publish.build import publish_all
    from iomfeed.runtime import open_runtime
    from iomfeed.web import App
    from iomfeed.web_server import make_server

    from .conftest import NOW
    from .digestkit import add_items, digest_config
    from .test_signup import Outbox

    http = make_server("127.0.0.1", 0, None)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    config = digest_config(tmp_path)
    public = f"http://127.0.0.1:{http.server_port}{PREFIX}/"
    config = dataclasses.replace(config, site=dataclasses.replace(config.site, public_url=public))
    clock = [NOW]
    app = App(config, now=lambda: clock[0])
    http.set_app(app)
    try:
        with open_runtime(config, clock=lambda: NOW) as rt:
            add_items(rt.store, range(1, 4), NOW - timedelta(days=1))
            publish_all(config, rt.store, now=NOW)
        outbox = Outbox(config.outbox_path)
        with browser() as chromium:
            page = chromium.new_page(viewport={"width": 375, "height": 800})
            page.goto(public)  # index.html, served from the feeds folder
            page.get_by_label("E-mail address").fill("besa@example.org")
            page.get_by_label("Language of the digest").select_option("sq")
            page.get_by_label("Global").uncheck()
            with page.expect_navigation():
                page.get_by_role("button", name="Subscribe").click()
            # The service's answer: the form again, in the index page's language (its
            # hidden "lang"), filled in as sent, now with a token.
            assert "One more step" in page.content()
            assert page.get_by_label("E-mail address").input_value() == "besa@example.org"
            assert page.get_by_label("Language of the digest").input_value() == "sq"
            assert not page.get_by_label("Global").is_checked()
            assert page.locator("input[name=form_token]").count() == 1
            shot(page, "forms-index-step-en-375.png", 375)
            assert outbox.new() == []
            clock[0] += timedelta(seconds=5)
            with page.expect_navigation():
                page.get_by_role("button", name="Subscribe").click()
            assert "Check your inbox" in page.content()
        assert app.forms.worker.drain(10)
        [message] = outbox.new()
        assert message["To"] == "besa@example.org"
        assert "konfirmoni" in message["Subject"]
        with open_runtime(config) as rt:
            profile = rt.store.profile(address="besa@example.org")
            assert profile is not None and profile.categories == ("Local",)
            assert profile.language == "sq"
    finally:
        http.shutdown()
        http.server_close()
        app.close()
