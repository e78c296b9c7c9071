"""``/preferences?t=…``: a subscriber's own page, reached by the per-subscriber signed link
of every digest, welcome and confirmation message. A GET shows it and changes nothing; each
change is a POST (its button's ``action``): ``save`` (language, categories), ``pause``
(until a date), ``resume``, ``unsubscribe``, ``download`` (the JSON of everything stored
about them and their deliveries) and ``delete`` (forgotten, a keyed hash kept as the
suppression entry). A change is shown back at once: the answer is the page itself, never a
redirect. Thin: the rules are :mod:`iomfeed.subscriptions`' and :mod:`iomfeed.forms`'.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from .config import Config
from .consent import State
from .digest.unsubscribe import BadToken
from .errors import InputError
from .forms import (
    category_labels,
    chosen_categories,
    language_names,
    offered_categories,
    offered_languages,
    parse_pause,
    ticked,
)
from .runtime import open_runtime
from .subscriptions import (
    Via,
    export_data,
    forget,
    leave,
    preferences_holder,
    set_preferences,
)
from .web_forms import Fields, first
from .web_pages import Answer, Pages

if TYPE_CHECKING:
    from .consent import Profile
    from .store import Store

log = logging.getLogger(__name__)

ACTIONS = ("save", "pause", "resume", "unsubscribe", "download", "delete")


class Preferences:
    def __init__(self, config: Config, now: Callable[[], datetime], pages: Pages) -> None:
        self.config = config
        self.now = now
        self.pages = pages

    def get(self, query: Fields) -> Answer:
        token = first(query, "t")
        with open_runtime(self.config, clock=self.now) as rt:
            try:
                profile = preferences_holder(rt.store, self.config, token)
            except BadToken as exc:
                log.info("preferences page refused: %s", exc)
                return self.pages.invalid(self.pages.lang(first(query, "lang")))
            lang = self.pages.lang(first(query, "lang"), profile.language)
            return self.page("200 OK", lang, profile, token, rt.clock())

    def post(self, fields: Fields) -> Answer:
        token = first(fields, "t")
        action = first(fields, "action")
        with open_runtime(self.config, clock=self.now) as rt:
            try:
                profile = preferences_holder(rt.store, self.config, token)
            except BadToken as exc:
                log.info("preferences change refused: %s", exc)
                return self.pages.invalid(self.pages.lang(first(fields, "lang")))
            if action == "download":
                return self._download(rt.store, token)
            if action == "delete":
                return self._delete(rt.store, profile, fields, token, rt.clock())
            return self._change(rt.store, profile, action, fields, token, rt.clock())

    def _change(
        self,
        store: Store,
        profile: Profile,
        action: str,
        fields: Fields,
        token: str,
        now: datetime,
    ) -> Answer:
        """save, pause, resume, unsubscribe: done, and the page shown back (or the page
        with the error next to its field, nothing changed)."""
        errors: dict[str, str] = {}
        if action == "save":
            language = first(fields, "language")
            categories = chosen_categories(self.config, fields.get("category", ()))
            if categories is None:
                errors["category"] = "error_categories"
            else:
                set_preferences(
                    store,
                    self.config,
                    token,
                    language=language if language in offered_languages(self.config) else None,
                    categories=categories,
                )
        elif action == "pause":
            try:
                until = parse_pause(first(fields, "until"), self.config, now)
            except InputError:
                errors["pause"] = "error_pause"
            else:
                set_preferences(store, self.config, token, paused_until=until)
        elif action == "resume":
            set_preferences(store, self.config, token, paused_until=None)
        elif action == "unsubscribe":
            sub = store.subscriber_by_id(profile.id)
            if sub is not None:
                leave(store, sub, Via.PREFERENCES, now)
        after = store.profile(subscriber_id=profile.id) or profile
        if not errors and action in ACTIONS:
            log.info("preferences of subscriber %d: %s", profile.id, action)
        # The page stays in the language it was read in, unless the digest's just changed.
        changed = after.language != profile.language
        lang = self.pages.lang(after.language if changed else first(fields, "lang"), after.language)
        status = "400 Bad Request" if errors else "200 OK"
        saved = not errors and action in ACTIONS
        return self.page(status, lang, after, token, now, errors=errors, saved=saved)

    def _download(self, store: Store, token: str) -> Answer:
        from .jsonout import dumps

        body = (dumps(export_data(store, self.config, token)) + "\n").encode("utf-8")
        return Answer(
            "200 OK",
            body,
            "application/json; charset=utf-8",
            (("Content-Disposition", 'attachment; filename="my-subscription.json"'),),
        )

    def _delete(
        self, store: Store, profile: Profile, fields: Fields, token: str, now: datetime
    ) -> Answer:
        lang = self.pages.lang(first(fields, "lang"), profile.language)
        if first(fields, "delete") != "yes":
            errors = {"delete": "error_delete"}
            return self.page("400 Bad Request", lang, profile, token, now, errors=errors)
        forget(store, self.config, profile.address, now)
        log.info("subscriber %d forgotten on their own request (preferences page)", profile.id)
        return self.pages.message("200 OK", lang, "deleted_title", ("deleted_lead",))

    def page(
        self,
        status: str,
        lang: str,
        profile: Profile,
        token: str,
        now: datetime,
        *,
        errors: Mapping[str, str] | None = None,
        saved: bool = False,
    ) -> Answer:
        words = self.pages.words(lang)
        tz = ZoneInfo(self.config.site.timezone)
        today = now.astimezone(tz).date()
        paused = profile.state is State.ACTIVE and profile.paused(now)
        values = {"list": self.pages.list_name(lang), "address": profile.address}
        link = None
        if profile.state in (State.UNSUBSCRIBED, State.BOUNCED):
            link = {"href": self.pages.subscribe_path, "label": words.subscribe_again}
        context: dict[str, Any] = {
            "notes": [("notice", words.prefs_saved)] if saved else [],
            "lead": words.prefs_lead.replace("{list}", values["list"]).replace(
                "{address}", profile.address
            ),
            "state": self._state(lang, profile, paused, tz),
            "link": link,
            "action": self.pages.preferences_path,
            "token": token,
            "languages": language_names(self.config),
            "language": profile.language,
            "categories": list(category_labels(self.config, lang, offered_categories(self.config))),
            "ticked": ticked(self.config, profile.categories),
            "active": profile.state is State.ACTIVE,
            "paused": paused,
            "until": profile.paused_until.astimezone(tz).date().isoformat()
            if paused and profile.paused_until
            else "",
            "pause_min": (today + timedelta(days=1)).isoformat(),
            "pause_max": (today + timedelta(days=366)).isoformat(),
            "errors": dict(errors or {}),
        }
        return self.pages.render(
            status,
            lang,
            words.prefs_title,
            template="web/preferences.html.j2",
            query={"t": token},
            **context,
        )

    def _state(self, lang: str, profile: Profile, paused: bool, tz: ZoneInfo) -> str:
        from .dates import format_day

        words = self.pages.words(lang)
        if profile.state is State.PENDING:
            return words.state_pending
        if profile.state is not State.ACTIVE:
            return words.state_left
        if paused and profile.paused_until is not None:
            day = format_day(profile.paused_until.astimezone(tz), lang, "long")
            return words.state_paused.replace("{date}", day)
        return words.state_active
