"""The sign-up messages: the confirmation (double opt-in), the welcome once confirmed, and
"you are already subscribed". Each is one message to one person, in their language, plain
text and HTML (``templates/subscribe/``, the digest's stylesheet inlined).

The headers are made as the digest's are (:mod:`iomfeed.digest.message`): every text that
reaches a header is cleaned by ``clean_header_text`` and RFC 2047-encoded by the email
package's SMTP policy when it is not ASCII; bodies are UTF-8, 8bit. Messages to someone on
the list (welcome, already subscribed) carry ``List-Unsubscribe`` with their unsubscribe
token and ``List-Unsubscribe-Post`` (RFC 8058); the confirmation does not: its reader is
not on the list yet, and ignoring it is the way to say no.

Rendering only: what to send, and when, is :mod:`iomfeed.subscriptions`'.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .digest.headers import clean_header_text
from .digest.message import (
    NAME_LIMIT,
    Outgoing,
    feedback_id,
    list_unsubscribe,
    mail_policy,
    set_address,
    set_subject,
)
from .template_cache import template_cache

if TYPE_CHECKING:
    from jinja2 import BytecodeCache, Environment

    from .config import Config
    from .languages import Language

TEMPLATE_FOLDER = "subscribe"


class Notice(Enum):
    CONFIRM = "confirm"
    WELCOME = "welcome"
    ALREADY = "already"


@dataclass(frozen=True, slots=True)
class Story:
    title: str
    url: str
    date: str


@dataclass(frozen=True, slots=True)
class Links:
    """The links a message carries ('' for those it has none of)."""

    confirm: str = ""
    preferences: str = ""
    unsubscribe: str = ""
    unsubscribe_mailto: str = ""  # a whole mailto: URL


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


@lru_cache(maxsize=4)
def _environment(cache: BytecodeCache | None) -> Environment:
    import importlib.resources

    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    from .digest.render import wrap_text

    folder = importlib.resources.files("iomfeed.templates") / TEMPLATE_FOLDER
    env = Environment(
        loader=FileSystemLoader(str(folder)),
        autoescape=lambda name: not (name or "").endswith(".txt.j2"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        bytecode_cache=cache,
    )
    env.filters["wrap"] = wrap_text
    return env


@lru_cache(maxsize=1)
def _css() -> str:
    from .digest.render import CSS_FILE, own_folder

    return own_folder().joinpath(CSS_FILE).read_text(encoding="utf-8")


def _words(
    kind: Notice, language: Language, values: dict[str, str], links: Links
) -> dict[str, Any]:
    from .digest.render import fill

    w = language.subscribe
    if kind is Notice.CONFIRM:
        parts = (w.confirm_subject, w.confirm_heading, [w.confirm_intro, w.confirm_action])
        after = [w.confirm_ignore]
    elif kind is Notice.WELCOME:
        parts, after = (w.welcome_subject, w.welcome_heading, [w.welcome_intro]), []
    else:
        parts, after = (w.already_subject, w.already_heading, [w.already_intro]), []
    subject, heading, paragraphs = parts
    return {
        "subject": fill(subject, **values),
        "heading": fill(heading, **values),
        "paragraphs": [fill(p, **values) for p in paragraphs],
        "after": [fill(p, **values) for p in after],
        "button": w.confirm_button if kind is Notice.CONFIRM else "",
        "button_url": links.confirm,
    }


def render(
    kind: Notice,
    *,
    config: Config,
    language: Language,
    address: str,
    name: str,
    links: Links,
    stories: Sequence[Story] | None = None,
) -> Rendered:
    """The message's subject and bodies in ``language`` (HTML with the CSS inlined)."""
    from .digest.render import fill, index_url, inline_css

    list_name = config.digest.title.get(language.code)
    values = {"list": list_name, "address": address, "days": f"{config.subscribe.confirm_days:g}"}
    chrome = language.chrome
    name = clean_header_text(name, NAME_LIMIT)
    context = {
        **_words(kind, language, values, links),
        "language": language.code,
        "list_name": list_name,
        "greeting": fill(chrome.greeting, name=name) if name else chrome.greeting_no_name,
        "stories": list(stories or ()) if kind is Notice.WELCOME else None,
        "stories_heading": language.subscribe.welcome_latest,
        "stories_none": language.subscribe.welcome_none,
        "preferences_url": links.preferences,
        "preferences_prompt": language.subscribe.preferences_prompt,
        "preferences": language.subscribe.preferences,
        "unsubscribe_url": links.unsubscribe,
        "unsubscribe_prompt": chrome.unsubscribe_prompt,
        "unsubscribe": chrome.unsubscribe,
        "sent_to": fill(chrome.sent_to, address=address),
        "index_url": index_url(config),
        "index_link": chrome.index_link,
        "postal_address": config.mail.postal_address.get(language.code),
    }
    context["preheader"] = context["paragraphs"][0]
    env = _environment(template_cache(config, "notices"))
    html = env.get_template("notice.html.j2").render(context)
    text = env.get_template("notice.txt.j2").render(context)
    return Rendered(subject=context["subject"], text=text, html=inline_css(html, _css()))


def message_id(config: Config, kind: Notice, subscriber_id: int, now: datetime) -> str:
    salt = hashlib.sha256(
        f"{config.list_id}\0{kind.value}\0{subscriber_id}\0{now.isoformat()}".encode()
    ).hexdigest()[:12]
    return f"<{kind.value}-{subscriber_id}.{salt}@{config.mail.sender_domain}>"


def compose(
    kind: Notice,
    rendered: Rendered,
    *,
    config: Config,
    language: str,
    subscriber_id: int,
    address: str,
    name: str,
    links: Links,
    now: datetime,
) -> Outgoing:
    """One message, ready for a :class:`~iomfeed.delivery.mailers.Mailer`."""
    from email.message import EmailMessage
    from email.utils import format_datetime

    msg = EmailMessage(policy=mail_policy())
    set_address(msg, "From", config.mail.from_name.get(language), config.mail.from_address)
    set_address(msg, "To", name, address)
    if config.mail.reply_to:
        msg["Reply-To"] = config.mail.reply_to
    set_subject(msg, clean_header_text(rendered.subject))
    msg["Date"] = format_datetime(now)
    mid = message_id(config, kind, subscriber_id, now)
    msg["Message-ID"] = mid
    set_address(msg, "List-Id", config.digest.title.get(language), config.list_id)
    raw = b""
    if links.unsubscribe:
        line = list_unsubscribe(links.unsubscribe, links.unsubscribe_mailto)
        raw = line.encode("ascii") + b"\r\n"  # before the policy's headers, as it is
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # Sent by a program on a form's request: no vacation responder should answer it.
    msg["Auto-Submitted"] = "auto-generated"
    msg["Feedback-ID"] = feedback_id(kind.value, config.list_id)
    msg.set_content(rendered.text, cte="8bit")
    msg.add_alternative(rendered.html, subtype="html", cte="8bit")
    return Outgoing(
        message_id=mid,
        sender=config.mail.from_address,
        recipient=address,
        data=raw + msg.as_bytes(),
    )
