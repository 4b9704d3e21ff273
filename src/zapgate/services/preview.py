"""Link previews for texts (`"link_preview": true` on a send): the first http(s) link of
the text is fetched through the SSRF-guarded client (`net/client.py`; private addresses
only with ZAPGATE_ALLOW_PRIVATE_URLS=true), its page read for og:title, og:description
and og:image (else <title> and the description meta tag), and the image made into a small
JPEG thumbnail with Pillow. Page and image are bounded in size and the whole fetch in
time. A preview that cannot be made never fails the send: it goes without one, and the
log says why."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import warnings
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
from PIL import Image

from zapgate.domain.content import LinkPreview
from zapgate.errors import GatewayError
from zapgate.net.client import guarded_client
from zapgate.net.ssrf import check_syntax

logger = logging.getLogger(__name__)

# What is read of a page (the <head> is near its start) and of its image, and how long
# the whole preview may take.
MAX_PAGE_BYTES = 512 * 1024
MAX_IMAGE_BYTES = 2 * 1024 * 1024
TIMEOUT = 5.0
MAX_REDIRECTS = 3
# The thumbnail WhatsApp shows beside the title: a small JPEG.
THUMBNAIL_SIDE = 300
THUMBNAIL_QUALITY = 70
MAX_TITLE_CHARS = 300
MAX_DESCRIPTION_CHARS = 1000
CHUNK = 64 * 1024
HTML_TYPES = ("text/html", "application/xhtml+xml")
# A link in a text; the punctuation that ends a sentence is not part of it.
_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""


class PreviewUnavailable(Exception):
    """Why a link has no preview (logged, never shown to the sender)."""


def first_url(text: str) -> str | None:
    """The first http(s) link of `text`, as written there (WhatsApp's matchedText)."""
    match = _URL.search(text)
    if match is None:
        return None
    url = match.group(0).rstrip(_TRAILING)
    return url if urlsplit(url).hostname else None


class _Head(HTMLParser):
    """The page's Open Graph properties, description meta tag and <title>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag == "meta":
            named = dict(attrs)
            key = (named.get("property") or named.get("name") or "").strip().lower()
            content = named.get("content")
            if key and content and key not in self.meta:
                self.meta[key] = content.strip()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def read_page(html: str, base: str) -> tuple[str | None, str | None, str | None]:
    """(title, description, absolute image URL) of a page at `base`."""
    head = _Head()
    head.feed(html)
    head.close()
    meta = head.meta
    title = meta.get("og:title") or meta.get("twitter:title") or " ".join(head.title.split())
    description = (
        meta.get("og:description") or meta.get("twitter:description") or meta.get("description")
    )
    image = meta.get("og:image") or meta.get("og:image:url") or meta.get("twitter:image")
    return (
        (title or "")[:MAX_TITLE_CHARS] or None,
        (description or "")[:MAX_DESCRIPTION_CHARS] or None,
        urljoin(base, image) if image else None,
    )


def thumbnail(data: bytes) -> bytes:
    """`data` (any image Pillow reads) as a JPEG of at most THUMBNAIL_SIDE pixels a side."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                img.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
                out = io.BytesIO()
                img.convert("RGB").save(out, format="JPEG", quality=THUMBNAIL_QUALITY)
    except (OSError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise PreviewUnavailable("its image is not one Pillow can read") from None
    return out.getvalue()


class LinkPreviews:
    """Makes the preview of a text's first link. `allow_private`: fetch private and
    loopback addresses too (ZAPGATE_ALLOW_PRIVATE_URLS)."""

    def __init__(self, *, allow_private: bool, timeout: float = TIMEOUT) -> None:
        self.allow_private = allow_private
        self.timeout = timeout

    async def for_text(self, text: str, *, label: str) -> LinkPreview | None:
        """The preview of `text`'s first link, None when there is none or it cannot be
        made (`label` names the session in the log)."""
        url = first_url(text)
        if url is None:
            logger.info("session %s: link preview asked for a text without a link", label)
            return None
        try:
            async with asyncio.timeout(self.timeout):
                return await self._make(url)
        except TimeoutError:
            reason = f"no answer within {self.timeout:.0f}s"
        except PreviewUnavailable as exc:
            reason = str(exc)
        except GatewayError as exc:  # the SSRF guard or the URL's syntax
            reason = exc.error
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
        host = urlsplit(url).hostname
        logger.info("session %s: sent without a link preview of %s: %s", label, host, reason)
        return None

    async def _make(self, url: str) -> LinkPreview:
        async with guarded_client(allow_private=self.allow_private, timeout=self.timeout) as client:
            page_url, body, mime = await _get(client, url, MAX_PAGE_BYTES, truncate=True)
            if mime not in HTML_TYPES:
                raise PreviewUnavailable(f"it is {mime or 'of no type'}, not a web page")
            title, description, image = read_page(body.decode(_charset(body), "replace"), page_url)
            if title is None and description is None:
                raise PreviewUnavailable("the page has neither a title nor a description")
            thumb = None
            if image is not None:
                try:
                    _, data, _ = await _get(client, image, MAX_IMAGE_BYTES, truncate=False)
                    thumb = await asyncio.to_thread(thumbnail, data)
                except (PreviewUnavailable, GatewayError, httpx.HTTPError) as exc:
                    # The title and description still make a preview.
                    detail = exc.error if isinstance(exc, GatewayError) else str(exc)
                    host = urlsplit(url).hostname
                    logger.info("link preview of %s without its image: %s", host, detail)
        return LinkPreview(url=url, title=title, description=description, thumbnail=thumb)


async def _get(
    client: httpx.AsyncClient, url: str, limit: int, *, truncate: bool
) -> tuple[str, bytes, str | None]:
    """(the final URL, at most `limit` bytes of the body, its media type) of a GET that
    follows redirects by hand (each hop's address is checked by the guarded client).
    Beyond `limit` the body is cut (`truncate`) or refused."""
    for _ in range(MAX_REDIRECTS + 1):
        check_syntax(url)
        async with client.stream("GET", url, headers={"Accept": "text/html,image/*"}) as resp:
            if resp.is_redirect and "location" in resp.headers:
                url = urljoin(url, resp.headers["location"])
                continue
            if resp.status_code != 200:
                raise PreviewUnavailable(f"{urlsplit(url).hostname} answered {resp.status_code}")
            chunks: list[bytes] = []
            total = 0
            async for chunk in resp.aiter_bytes(CHUNK):
                chunks.append(chunk)
                total += len(chunk)
                if total > limit:
                    if not truncate:
                        raise PreviewUnavailable(f"larger than {limit} bytes")
                    break
            mime = resp.headers.get("content-type", "").split(";", 1)[0].strip().lower()
            return url, b"".join(chunks)[:limit], mime or None
    raise PreviewUnavailable(f"more than {MAX_REDIRECTS} redirects")


def _charset(body: bytes) -> str:
    """The page's encoding as its <meta charset> says (UTF-8 otherwise)."""
    match = re.search(rb"""charset=["']?([A-Za-z0-9_-]{1,40})""", body[:4096])
    name = match.group(1).decode("ascii") if match else "utf-8"
    try:
        "".encode(name)
    except LookupError:
        return "utf-8"
    return name
