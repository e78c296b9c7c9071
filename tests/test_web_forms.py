"""The web forms (/subscribe, /confirm, /preferences) through the real waitress server on
127.0.0.1, with the outbox transport and a clock the test moves: GETs change nothing,
bad tokens get 400 and change nothing, POST /subscribe answers the same bytes whoever is on
the list, the form token, the honeypot, the rate limits, the body cap, errors next to their
field, the data download and deletion."""

from __future__ import annotations

import dataclasses
import http.client
import json
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from iomfeed import languages
from iomfeed.config import Config
from iomfeed.consent import State
from iomfeed.digest.unsubscribe import load_secret, suppression_keys
from iomfeed.forms import form_token
from iomfeed.store import Store
from iomfeed.web import App
from iomfeed.web_server import make_server

from .conftest import NOW
from .digestkit import digest_config
from .smtp import PUBLIC_URL
from .test_signup import Outbox, link

pytestmark = pytest.mark.network

ANA = "ana@example.org"
PREFIX = "/iom-albania"  # the path of the shipped site.public_url


@dataclass
class Site:
    config: Config
    app: App
    port: int
    clock: list[datetime]
    outbox: Outbox

    @property
    def now(self) -> datetime:
        return self.clock[0]

    def advance(self, **delta: float) -> None:
        self.clock[0] += timedelta(**delta)

    def request(
        self,
        method: str,
        path: str,
        fields: Mapping[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> tuple[int, dict[str, str], str]:
        if fields is not None:
            body = urlencode(fields, doseq=True).encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read().decode("utf-8", "replace")
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def token(self) -> str:
        with Store(self.config.database_path) as store:
            return form_token(load_secret(self.config, store), self.config.list_id, self.now)

    def sign_up(self, address: str = ANA, **extra: str | list[str]) -> tuple[int, str]:
        """A sign-up posted 3 s after its form was loaded; the worker's work waited for."""
        fields: dict[str, str | list[str]] = {
            "form_token": self.token(),
            "email": address,
            "name": "Ana Hoxha",
            "language": "en",
            "category": ["Local", "Global"],
            "lang": "en",
            **extra,
        }
        self.advance(seconds=3)
        status, _headers, body = self.request("POST", f"{PREFIX}/subscribe", fields)
        assert self.app.forms.worker.drain(10)
        return status, body

    def pages_word(self, lang: str, key: str) -> str:
        return str(getattr(self.app.forms.pages.words(lang), key))

    def profile(self, address: str = ANA) -> object:
        with Store(self.config.database_path) as store:
            return store.profile(address=address)


def make_site(tmp_path: Path, **subscribe: object) -> Iterator[Site]:
    config = digest_config(tmp_path, subscribe=subscribe)
    config = dataclasses.replace(
        config, serve=dataclasses.replace(config.serve, trusted_proxy="127.0.0.1")
    )
    clock = [NOW]
    app = App(config, now=lambda: clock[0])
    server = make_server("127.0.0.1", 0, app, trusted_proxy="127.0.0.1")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(config, app, server.server_port, clock, Outbox(config.outbox_path))
    finally:
        server.shutdown()
        server.server_close()
        app.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    yield from make_site(tmp_path)


def snapshot(config: Config) -> list[tuple[object, ...]]:
    """Every subscriber row, suppression and form hit: what a GET must not change."""
    with Store(config.database_path) as store:
        rows = [tuple(r) for r in store.db.execute("SELECT * FROM subscribers ORDER BY id")]
        rows += [tuple(r) for r in store.db.execute("SELECT * FROM suppressed ORDER BY hash")]
        rows += [tuple(r) for r in store.db.execute("SELECT * FROM form_hits ORDER BY rowid")]
    return rows


def confirmed(site: Site, address: str = ANA) -> str:
    """Sign ``address`` up and confirm it through the pages; its preferences token."""
    site.sign_up(address)
    [message] = site.outbox.new()
    token = link(message, "confirm")
    status, _h, body = site.request("POST", f"{PREFIX}/confirm", {"t": token})
    assert status == 200 and "You are subscribed" in body
    [welcome] = site.outbox.new()
    return link(welcome, "preferences")


def test_a_sign_up_is_confirmed_only_by_the_button_and_a_get_changes_nothing(
    site: Site,
) -> None:
    status, headers, body = site.request("GET", f"{PREFIX}/subscribe?lang=sq")
    assert status == 200 and '<html lang="sq">' in body
    assert "Regjistrohuni në Lajme nga IOM Shqipëri" in body
    assert (
        headers["cache-control"] == "no-store"
        and "frame-ancestors 'none'" in (headers["content-security-policy"])
    )
    assert re.search(r'name="form_token" value="\d+\.[\w-]{12}\.[\w-]{22}"', body)
    assert body.count('type="checkbox"') == 2 and body.count(" checked") == 2  # all ticked
    assert 'href="?lang=en"' in body  # the switch
    for field in ("email", "name", "language", "category-1", "category-2", "website"):
        assert f'<label for="{field}">' in body, field
    assert "<script" not in body

    status, body = site.sign_up()
    assert status == 200 and "Check your inbox" in body
    # The answer to a POST has no language switch: its link would open an empty form.
    assert 'class="switch"' not in body and "hreflang" not in body
    [message] = site.outbox.new()
    token = link(message, "confirm")
    before = snapshot(site.config)
    for method in ("GET", "HEAD"):  # link scanners prefetch: nothing may change
        status, _h, page = site.request(method, f"{PREFIX}/confirm?t={token}")
        assert status == 200
    assert "Yes, subscribe me" in page or page == ""
    status, _h, page = site.request("GET", f"/confirm?t={token}")
    assert f'action="{PREFIX}/confirm"' in page and f'value="{token}"' in page
    assert snapshot(site.config) == before and site.outbox.new() == []
    assert site.profile().state is State.PENDING  # type: ignore[attr-defined]

    status, _h, page = site.request("POST", f"{PREFIX}/confirm", {"t": token})
    assert status == 200 and "You are subscribed" in page and 'class="switch"' not in page
    assert site.profile().state is State.ACTIVE  # type: ignore[attr-defined]
    [welcome] = site.outbox.new()
    prefs = link(welcome, "preferences")
    assert f'href="{PREFIX}/preferences?t={prefs}"' in page  # a same-origin path
    before = snapshot(site.config)
    for path in (f"{PREFIX}/preferences?t={prefs}", f"{PREFIX}/preferences?t={prefs}&lang=sq"):
        status, _h, page = site.request("GET", path)
        assert status == 200
        assert ("Your subscription" in page) != ("Regjistrimi juaj" in page)
    assert snapshot(site.config) == before


@pytest.mark.parametrize("page", ["confirm", "preferences"])
def test_forged_expired_and_tampered_tokens_get_400_and_change_nothing(
    site: Site, page: str
) -> None:
    site.sign_up()
    [message] = site.outbox.new()
    confirm = link(message, "confirm")
    with Store(site.config.database_path) as store:
        from iomfeed.signup import preferences_url

        profile = store.profile(address=ANA)
        assert profile is not None
        prefs = preferences_url(site.config, store, profile).partition("?t=")[2]
    good = confirm if page == "confirm" else prefs
    sid, _, rest = good.partition(".")
    bad = [
        "",
        "nonsense",
        good[:-1] + ("A" if good[-1] != "A" else "B"),  # tampered signature
        f"{int(sid) + 1}.{rest}",  # another subscriber's id
        "1.1700000000.AAAAAAAAAAAAAAAAAAAAAA",  # forged
    ]
    before = snapshot(site.config)
    for token in bad:
        for method in ("GET", "POST"):
            fields = {"t": token, "action": "delete", "delete": "yes"}
            status, _h, body = site.request(
                method,
                f"{PREFIX}/{page}" + (f"?t={token}" if method == "GET" else ""),
                fields if method == "POST" else None,
            )
            assert status == 400, (token, method)
            assert "This link does not work" in body
    if page == "confirm":  # expired: confirm_days (7) later
        site.advance(days=7, hours=1)
        status, _h, body = site.request("POST", f"{PREFIX}/confirm", {"t": confirm})
        assert status == 400 and "This link does not work" in body
    assert snapshot(site.config) == before and site.outbox.new() == []


def test_the_answer_is_the_same_bytes_whoever_is_on_the_list(tmp_path: Path) -> None:
    for site in make_site(tmp_path, client_per_hour=100, address_per_day=100):
        answers = {}
        _s, answers["new"] = site.sign_up()
        assert [m["Subject"] for m in site.outbox.new()] == [
            "Please confirm your subscription to IOM Albania news"
        ]
        _s, answers["pending"] = site.sign_up()  # within the hour: no mail
        assert site.outbox.new() == []
        prefs = confirmed(site, "fatos@example.org")
        _s, answers["active"] = site.sign_up("fatos@example.org")
        assert [m["Subject"] for m in site.outbox.new()] == [
            "You are already subscribed to IOM Albania news"
        ]
        site.request("POST", f"{PREFIX}/preferences", {"t": prefs, "action": "unsubscribe"})
        assert site.profile("fatos@example.org").state is State.UNSUBSCRIBED  # type: ignore[attr-defined]
        _s, answers["unsubscribed"] = site.sign_up("fatos@example.org")
        assert len(site.outbox.new()) == 1  # a new double opt-in
        prefs = confirmed(site, "drita@example.org")
        site.request(
            "POST", f"{PREFIX}/preferences", {"t": prefs, "action": "delete", "delete": "yes"}
        )
        assert site.profile("drita@example.org") is None
        _s, answers["suppressed"] = site.sign_up("drita@example.org")
        assert len(site.outbox.new()) == 1
        _s, answers["honeypot"] = site.sign_up("drita@example.org", website="http://spam")
        assert site.outbox.new() == []
        # The same address in each state: the same bytes.
        pages = {
            k: v.replace("fatos@", "ADDRESS@").replace("drita@", "ADDRESS@")
            for k, v in answers.items()
        }
        pages = {k: v.replace("ana@", "ADDRESS@") for k, v in pages.items()}
        assert len(set(pages.values())) == 1, pages.keys()
        assert "Check your inbox" in answers["new"]


def test_rate_limits_per_client_and_per_address_give_the_same_answer_and_no_mail(
    tmp_path: Path,
) -> None:
    for site in make_site(tmp_path, client_per_hour=3, address_per_day=2):
        answers = set()
        for i in range(3):  # three clients' worth from one: the fourth is over
            status, body = site.sign_up(f"p{i}@example.org")
            answers.add(body.replace(f"p{i}@", "X@"))
        assert len(site.outbox.new()) == 3
        status, body = site.sign_up("p9@example.org")
        assert status == 200 and body.replace("p9@", "X@") in answers
        assert site.outbox.new() == [] and site.profile("p9@example.org") is None
        # Another client (X-Forwarded-For from the trusted proxy) may.
        fields = {
            "form_token": site.token(),
            "email": "p9@example.org",
            "lang": "en",
            "category": ["Local"],
        }
        site.advance(seconds=3)
        site.request("POST", "/subscribe", fields, headers={"X-Forwarded-For": "203.0.113.9"})
        assert site.app.forms.worker.drain(10) and len(site.outbox.new()) == 1
        # Per address: two a day from any client, then nothing (not even after an hour).
        site.advance(hours=2)
        for client in ("203.0.113.10", "203.0.113.11"):
            fields["form_token"] = site.token()
            site.advance(hours=1, seconds=3)
            site.request("POST", "/subscribe", fields, headers={"X-Forwarded-For": client})
            assert site.app.forms.worker.drain(10)
        assert len(site.outbox.new()) == 1  # the second of the day: over the address limit
        with Store(site.config.database_path) as store:
            keys = [r[0] for r in store.db.execute("SELECT key FROM form_hits")]
        assert keys and not any("example.org" in k or "203.0" in k for k in keys)


def test_the_form_token_must_be_loaded_first_and_not_too_long_ago(site: Site) -> None:
    fields = {"email": ANA, "lang": "sq", "language": "sq", "category": ["Local"]}
    # No token (the static index.html, another site): the form back, filled in, with one.
    status, _h, body = site.request("POST", "/subscribe", fields)
    assert status == 200 and "Edhe një hap" in body and f'value="{ANA}"' in body
    fresh = re.search(r'name="form_token" value="([^"]+)"', body)
    assert fresh is not None
    assert 'value="Local" checked' in body and 'value="Global">' in body
    # Sent at once: too young. Three hours later: expired. Forged: refused.
    for token, delay in ((fresh.group(1), 0.5), (site.token(), 3 * 3600), ("1.abc.def", 3)):
        site.advance(seconds=delay)
        status, _h, body = site.request("POST", "/subscribe", {**fields, "form_token": token})
        assert status == 400 and "dërgua shumë shpejt" in body
        site.app.forms.worker.drain(5)
    assert site.outbox.new() == [] and site.profile() is None
    status, body = site.sign_up(language="sq", lang="sq")
    assert status == 200 and "Shikoni kutinë tuaj të postës" in body
    assert len(site.outbox.new()) == 1


def test_a_filled_honeypot_gets_the_same_answer_and_nothing_is_done(site: Site) -> None:
    _s, real = site.sign_up("real@example.org")
    site.outbox.new()
    status, trap = site.sign_up("bot@example.org", website="http://buy.example")
    assert status == 200 and trap.replace("bot@", "real@") == real
    assert site.outbox.new() == [] and site.profile("bot@example.org") is None


def test_errors_are_shown_next_to_their_field_and_nothing_is_done(site: Site) -> None:
    status, body = site.sign_up("not an address", category=[])
    assert status == 400
    assert re.search(
        r'id="email"[^>]*aria-describedby="email-error">\s*<p class="error" id="email-error">'
        r"This is not an e-mail address",
        body,
    )
    assert 'id="category-error">Choose at least one kind of news.' in body
    assert 'value="not an address"' in body  # shown back to correct
    # Role and disposable addresses are people's too.
    status, body = site.sign_up("info@mailinator.com")
    assert status == 200 and len(site.outbox.new()) == 1


def test_an_oversized_body_is_refused_by_the_app_itself(site: Site) -> None:
    body = urlencode({"email": ANA, "form_token": site.token(), "name": "x" * 20_000}).encode()
    site.advance(seconds=3)
    status, _h, page = site.request(
        "POST",
        "/subscribe",
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 413 and "too large" in page
    assert site.app.forms.worker.drain(5) and site.profile() is None
    # The Albanian form's answer is Albanian (a new user's trial got it in English).
    status, _h, page = site.request(
        "POST",
        "/subscribe?lang=sq",
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 413 and '<html lang="sq"' in page
    assert site.pages_word("sq", "too_large") in page


def test_many_fields_or_parameters_are_read_past_not_answered_with_500(site: Site) -> None:
    """A link rewriter's tracking parameters on a confirmation link, or a form posted with
    hundreds of fields: the page answers as without them (a field cap raised, a 500)."""
    site.sign_up()
    [message] = site.outbox.new()
    token = link(message, "confirm")
    extra = "".join(f"&utm_{n}=1" for n in range(40))
    status, _h, page = site.request("GET", f"{PREFIX}/confirm?t={token}{extra}")
    assert status == 200 and "Yes, subscribe me" in page
    status, _h, page = site.request("GET", f"{PREFIX}/subscribe?lang=sq{extra}")
    assert status == 200 and '<html lang="sq">' in page
    fields = {"t": token, **{f"x{n}": "1" for n in range(300)}}
    status, _h, page = site.request("POST", f"{PREFIX}/confirm", fields)
    assert status == 200 and "You are subscribed" in page
    status, _h, page = site.request("GET", f"{PREFIX}/confirm?t={token}&" + "x" * 11_000)
    assert status == 400  # no token read from a query that long: the link does not work


def test_preferences_change_download_and_delete_through_the_page(site: Site) -> None:
    prefs = confirmed(site)
    path = f"{PREFIX}/preferences"
    status, _h, page = site.request(
        "POST", path, {"t": prefs, "action": "save", "language": "sq", "category": ["Local"]}
    )
    assert status == 200 and '<html lang="sq">' in page and "Ndryshimet tuaja u ruajtën" in page
    assert 'value="Local" checked' in page and 'value="Global">' in page
    profile = site.profile()
    assert profile.language == "sq" and profile.categories == ("Local",)  # type: ignore[attr-defined]
    status, _h, page = site.request("POST", path, {"t": prefs, "action": "save", "language": "sq"})
    assert status == 400 and 'id="category-error"' in page  # none ticked: nothing changed
    assert site.profile().categories == ("Local",)  # type: ignore[attr-defined]

    status, _h, page = site.request(
        "POST", path, {"t": prefs, "action": "pause", "until": "2026-11-20"}
    )
    assert status == 400 and 'id="pause-error"' in page
    status, _h, page = site.request(
        "POST", path, {"t": prefs, "action": "pause", "until": "2027-01-10"}
    )
    assert status == 200 and "pezulluar deri më 10 janar 2027" in page
    assert site.profile().paused_until.isoformat() == "2027-01-09T23:00:00+00:00"  # type: ignore[attr-defined]
    site.request("POST", path, {"t": prefs, "action": "resume"})
    assert site.profile().paused_until is None  # type: ignore[attr-defined]

    status, headers, data = site.request("POST", path, {"t": prefs, "action": "download"})
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert "attachment" in headers["content-disposition"]
    exported = json.loads(data)
    assert exported["subscriber"]["address"] == ANA and exported["deliveries"] == []
    assert exported["subscriber"]["consent"]["via"] == "web form"

    status, _h, page = site.request("POST", path, {"t": prefs, "action": "delete"})
    assert status == 400 and 'id="delete-error"' in page and site.profile() is not None
    status, _h, page = site.request("POST", path, {"t": prefs, "action": "delete", "delete": "yes"})
    assert status == 200 and "Jeni fshirë" in page
    assert site.profile() is None
    with Store(site.config.database_path) as store:
        assert store.is_suppressed(suppression_keys(site.config, store).hash(ANA))
    status, _h, page = site.request("GET", f"{path}?t={prefs}")
    assert status == 400  # the link died with the address


def test_unsubscribing_on_the_page_and_the_state_shown(site: Site) -> None:
    prefs = confirmed(site)
    status, _h, page = site.request(
        "POST", f"{PREFIX}/preferences", {"t": prefs, "action": "unsubscribe"}
    )
    assert status == 200 and "You are unsubscribed" in page
    assert site.profile().state is State.UNSUBSCRIBED  # type: ignore[attr-defined]
    assert f'href="{PREFIX}/subscribe"' in page


def test_every_language_file_has_every_forms_key() -> None:
    for code in languages.BUILT_IN:
        words = languages.load(code).forms
        assert words is not None, code
        for key in languages.FORMS_KEYS:
            assert getattr(words, key).strip(), (code, key)
    en = languages.load("en").forms
    sq = languages.load("sq").forms
    assert en != sq


def test_the_mail_goes_after_the_answer_so_its_time_tells_nothing(tmp_path: Path) -> None:
    """A relay that takes 1.5 s per message: the answer to a new address (which gets a
    confirmation) comes as fast as one to a pending address (which gets nothing)."""
    import time

    from .smtp import Behaviour, smtp_server

    def slow(event: str, n: int) -> None:
        if event == "rcpt":
            time.sleep(1.5)

    with smtp_server(Behaviour(hook=slow)) as (handler, port):
        config = digest_config(
            tmp_path,
            mail={"transport": "smtp", "rate": 0.0},
            smtp={"host": "127.0.0.1", "port": port, "security": "none"},
        )
        config = dataclasses.replace(
            config, site=dataclasses.replace(config.site, public_url=PUBLIC_URL)
        )
        clock = [NOW]
        app = App(config, now=lambda: clock[0])
        server = make_server("127.0.0.1", 0, app)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        site = Site(config, app, server.server_port, clock, Outbox(config.outbox_path))
        try:
            timings = []
            for _ in range(2):  # new (a confirmation goes), then pending (nothing goes)
                fields = {"form_token": site.token(), "email": ANA, "category": ["Local"]}
                site.advance(seconds=3)
                started = time.monotonic()
                status, _h, body = site.request("POST", "/subscribe", fields)
                timings.append(time.monotonic() - started)
                assert status == 200 and "Check your inbox" in body
                assert app.forms.worker.drain(10)
            assert max(timings) < 1.0, timings  # the 1.5 s relay was not waited for
            assert len(handler.received) == 1
        finally:
            server.shutdown()
            server.server_close()
            app.close()


def test_the_client_address_follows_the_trusted_proxy_under_any_server() -> None:
    from iomfeed.web_forms import client_address

    behind = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.1, 203.0.113.7"}
    assert client_address(behind, "127.0.0.1") == "203.0.113.7"  # gunicorn behind nginx
    assert client_address(behind, "*") == "203.0.113.7"
    assert client_address(behind, "") == "127.0.0.1"  # no proxy trusted: never believed
    assert client_address(behind, "10.0.0.1") == "127.0.0.1"  # not from the trusted one
    waitress = {"REMOTE_ADDR": "203.0.113.7", "HTTP_X_FORWARDED_FOR": "203.0.113.7"}
    assert client_address(waitress, "127.0.0.1") == "203.0.113.7"  # already applied


def test_the_categories_offered_are_those_the_digest_segments_by(tmp_path: Path) -> None:
    from iomfeed.digest.segments import offered_categories as segmented
    from iomfeed.forms import chosen_categories, offered_categories

    config = digest_config(tmp_path)
    assert offered_categories(config) == segmented(config) == ("Local", "Global")
    assert chosen_categories(config, ["local", "GLOBAL"]) == ()  # all: every category
    assert chosen_categories(config, ["Global", "Nonsense"]) == ("Global",)
    assert chosen_categories(config, []) is None


def test_the_schema_step_adds_the_counts_to_a_database_an_older_iomfeed_left(
    tmp_path: Path,
) -> None:
    from iomfeed.forms import admit

    from .schemakit import database_before

    path = tmp_path / "old.db"
    db = database_before(path, "issue 11 (web forms)")
    db.execute(
        "INSERT INTO subscribers (address, name, language, status, subscribed)"
        " VALUES ('a@example.org', 'Ana', 'sq', 'active', '2026-11-01T00:00:00Z')"
    )
    db.close()
    config = digest_config(
        tmp_path, storage={"database": str(path)}, subscribe={"address_per_day": 1}
    )
    with Store(path) as store:
        assert store.profile(address="a@example.org") is not None
        secret = load_secret(config, store)
        assert admit(store, config, secret, client="203.0.113.1", address=ANA, now=NOW)
        assert not admit(store, config, secret, client="203.0.113.2", address=ANA, now=NOW)
        # A day later the old hits are gone and the address may again.
        later = NOW + timedelta(days=1, seconds=1)
        assert admit(store, config, secret, client="203.0.113.2", address=ANA, now=later)
        assert store.db.execute("SELECT COUNT(*) FROM form_hits").fetchone()[0] == 2


def test_a_sign_up_another_worker_finished_meanwhile_is_not_erased(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A claim that outlived its lease (a suspended machine): another worker did the same
    # sign-up and deleted its row. The late worker finds no row: nothing to erase.
    from iomfeed import web_forms

    real = web_forms.SignUpWorker._sign_up

    def finished_elsewhere(self: Any, rt: Any, job: Any) -> None:
        real(self, rt, job)
        with Store(site.config.database_path) as other:
            other.finish_sign_up(job.id)

    monkeypatch.setattr(web_forms.SignUpWorker, "_sign_up", finished_elsewhere)
    status, _body = site.sign_up()
    assert status == 200
    profile = site.profile()
    assert profile is not None and profile.state is State.PENDING  # type: ignore[attr-defined]


def test_an_address_forgotten_while_its_sign_up_is_being_done_stays_forgotten(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The owner asks to be forgotten after posting the form, while the worker is on it:
    # what the sign-up then adds is erased again, and only the suppression hash stays.
    from iomfeed import web_forms
    from iomfeed.subscriptions import forget

    real = web_forms.SignUpWorker._sign_up

    def forgotten_meanwhile(self: Any, rt: Any, job: Any) -> None:
        with Store(site.config.database_path) as other:  # another process's forget
            forget(other, site.config, job.address, site.now)
        real(self, rt, job)

    monkeypatch.setattr(web_forms.SignUpWorker, "_sign_up", forgotten_meanwhile)
    import iomfeed.subscriptions

    erasing, queued = iomfeed.subscriptions.forget, []

    def erase(store: Store, *args: Any) -> Any:
        queued.append(store.queued_sign_ups())
        return erasing(store, *args)

    monkeypatch.setattr(iomfeed.subscriptions, "forget", erase)
    status, _body = site.sign_up()
    assert status == 200
    # Its row was still there while what it added was erased: a reader that waits for the
    # queue to empty (drain, as the test does) never sees the forgotten address.
    assert queued[-1] == 1, queued
    profile = site.profile()
    assert profile is None or profile.state is State.UNSUBSCRIBED  # type: ignore[attr-defined]
    with Store(site.config.database_path) as store:
        assert store.subscriber(ANA) is None  # no address kept
        own = suppression_keys(site.config, store).hash(ANA)
        assert store.db.execute("SELECT 1 FROM suppressed WHERE hash = ?", (own,)).fetchone()
        assert store.queued_sign_ups() == 0
