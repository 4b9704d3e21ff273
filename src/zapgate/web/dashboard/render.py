"""Templates, per-request page state (user, language, signed cookie) and responses."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import segno
from babel import Locale
from babel.dates import format_date
from babel.numbers import format_decimal
from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from zapgate import __version__, i18n
from zapgate.domain.content import Location
from zapgate.domain.models import User
from zapgate.errors import GatewayError
from zapgate.i18n.errors import translate, translate_text
from zapgate.i18n.reasons import state_reason
from zapgate.web.context import AppContext
from zapgate.web.dashboard.security import COOKIE_MAX_AGE, COOKIE_NAME, CookieCodec, WebSession
from zapgate.web.dashboard.service import DashboardService

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"

# No inline scripts and no eval: htmx runs with allowEval off (see base.html).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)


def qr_svg(payload: str, title: str) -> Markup:
    svg = segno.make(payload, error="l").svg_inline(
        scale=1, border=2, dark="#111b21", light="#ffffff", omitsize=True, title=title
    )
    return Markup(str(svg))


def reaction_counts(reactions: Mapping[str, str]) -> list[tuple[str, int]]:
    """A message's reactions as WhatsApp shows them under it: each emoji with how many
    reacted with it, the most used first."""
    return Counter(reactions.values()).most_common()


def map_url(location: Location) -> str:
    """A link to the place on OpenStreetMap (shown as a link, never fetched)."""
    return "https://www.openstreetmap.org/?" + urlencode(
        {"mlat": f"{location.latitude:.6f}", "mlon": f"{location.longitude:.6f}"}
    )


def format_size(size: int, lang: str) -> str:
    """A file size as people read it: "820 B", "14,2 KB", "3,1 MB"."""
    locale = Locale.parse(lang)
    value = float(size)
    for unit in ("B", "KB", "MB"):
        if value < 1024 or unit == "MB":
            pattern = "#,##0" if unit == "B" else "#,##0.0"
            return f"{format_decimal(value, pattern, locale=locale)} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


@dataclass
class Dashboard:
    """Everything the dashboard holds, built when the app starts."""

    codec: CookieCodec
    env: Environment
    secure_cookies: bool
    service: DashboardService

    @classmethod
    def build(cls, ctx: AppContext, secret: str) -> Dashboard:
        env = Environment(
            loader=PackageLoader("zapgate.web.dashboard", "templates"),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.globals["version"] = __version__
        env.globals["lang_names"] = i18n.LANG_NAMES
        env.filters["phone"] = i18n.format_phone
        env.globals["reaction_counts"] = reaction_counts
        env.globals["map_url"] = map_url
        secure = ctx.settings.cookie_secure
        if secure is None:
            secure = ctx.settings.is_production
        return cls(
            codec=CookieCodec(secret), env=env, secure_cookies=secure, service=DashboardService(ctx)
        )


@dataclass
class Page:
    """One request's view of the dashboard."""

    request: Request
    ctx: AppContext
    dash: Dashboard
    web: WebSession
    user: User | None
    lang: str

    @property
    def is_htmx(self) -> bool:
        return self.request.headers.get("hx-request") == "true"

    @property
    def svc(self) -> DashboardService:
        return self.dash.service

    def _(self, msgid: str) -> str:
        return i18n.gettext(self.lang, msgid)

    @property
    def display_zone(self) -> str:
        """ZAPGATE_TIMEZONE when the operator set it; else Brazil's for pt-BR, UTC otherwise.
        The browser then shows every <time> in its own zone (static/app.js)."""
        settings = self.ctx.settings
        if "timezone" in settings.model_fields_set or self.lang != "pt_BR":
            return settings.timezone
        return "America/Sao_Paulo"

    def error_text(self, err: GatewayError) -> str:
        return translate(err, self.lang)[0]

    def error_hint(self, err: GatewayError) -> str:
        return translate(err, self.lang)[1]

    def template_context(self, **extra: Any) -> dict[str, Any]:
        lang, tz = self.lang, self.display_zone
        cat = i18n.catalog(lang)

        def fmt_dt(value: datetime | None) -> str:
            return i18n.format_datetime(value, lang, tz)

        def fmt_time(value: datetime | None) -> str:
            return i18n.format_time(value, lang, tz)

        def when(value: datetime | None, style: str = "datetime") -> Markup:
            """A <time> the browser rewrites into its own zone (static/app.js); the server's
            rendering, with its zone named, is what a page without JavaScript shows.
            `style` "day": the time for today, else the date (a chat list's)."""
            if value is None:
                return Markup("")
            if style == "day":
                local = i18n.zone(tz)
                if value.astimezone(local).date() != datetime.now(UTC).astimezone(local).date():
                    text = format_date(value.astimezone(local), "short", locale=Locale.parse(lang))
                    return Markup('<time datetime="{}" data-local="day">{}</time>').format(
                        value.isoformat(), text
                    )
            text = fmt_time(value) if style in ("time", "day") else fmt_dt(value)
            return Markup('<time datetime="{}" data-local="{}">{} {}</time>').format(
                value.isoformat(), style, text, i18n.zone_label(value, tz)
            )

        def fmt_ago(value: datetime | None) -> str:
            return i18n.format_ago(value, lang)

        def fmt_num(value: float) -> str:
            return i18n.format_number(value, lang)

        def fmt_size(value: int) -> str:
            return format_size(value, lang)

        base: dict[str, Any] = {
            "request": self.request,
            "_": cat.gettext,
            "ngettext": cat.ngettext,
            "tr": lambda text: translate_text(text, lang),
            "reason": lambda text: state_reason(text, lang),
            "err_text": self.error_text,
            "err_hint": self.error_hint,
            "lang": lang,
            "html_lang": lang.replace("_", "-"),
            "user": self.user,
            "csrf_token": self.web.csrf,
            "sim_enabled": self.ctx.settings.sim_api_enabled,
            "signup_enabled": self.ctx.settings.signup_enabled,
            "fmt_dt": fmt_dt,
            "fmt_time": fmt_time,
            "fmt_ago": fmt_ago,
            "when": when,
            "fmt_num": fmt_num,
            "fmt_size": fmt_size,
            "qr_svg": qr_svg,
            "nav": "",
            "path": self.request.url.path,
        }
        base.update(extra)
        return base

    def render(self, template: str, status: int = 200, **extra: Any) -> Response:
        html = self.dash.env.get_template(template).render(self.template_context(**extra))
        return self.finish(HTMLResponse(html, status_code=status))

    def redirect(self, url: str) -> Response:
        if self.is_htmx:
            # htmx follows a 303 inside the fetch; HX-Redirect makes the browser go there.
            return self.finish(Response(status_code=204, headers={"HX-Redirect": url}))
        return self.finish(RedirectResponse(url, status_code=303))

    def finish(self, response: Response) -> Response:
        if self.web.dirty:
            response.set_cookie(
                COOKIE_NAME,
                self.dash.codec.dumps(self.web),
                max_age=COOKIE_MAX_AGE,
                path="/",
                httponly=True,
                samesite="lax",
                secure=self.dash.secure_cookies,
            )
        security_headers(response)
        return response


def security_headers(response: Response) -> None:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cache-Control", "no-store")


async def load_page(request: Request) -> Page:
    ctx: AppContext = request.app.state.ctx
    dash: Dashboard = request.app.state.dashboard
    web = dash.codec.loads(request.cookies.get(COOKIE_NAME))
    if web is None:
        web = WebSession(dirty=True)
    user: User | None = None
    if web.user_id is not None:
        # The cookie alone is not enough: its server-side session must still be open
        # (not signed out, not opened under an older password), and the account exist.
        if web.sid is not None and await ctx.accounts.dashboard_session_valid(web.sid, web.user_id):
            user = await ctx.accounts.get(web.user_id)
        if user is None:
            web.sign_out()
    lang = i18n.choose_lang(
        user.lang if user else web.lang,
        request.headers.get("accept-language"),
        ctx.settings.lang,
    )
    request.state.lang = lang
    request.state.page = page = Page(
        request=request, ctx=ctx, dash=dash, web=web, user=user, lang=lang
    )
    return page
