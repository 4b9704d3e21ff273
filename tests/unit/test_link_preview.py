"""services/preview.py: which link of a text is previewed, what a page gives, the
thumbnail, and that an address the SSRF guard refuses is never fetched."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.media_samples import png_bytes
from zapgate.services.preview import LinkPreviews, first_url, read_page, thumbnail


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("veja https://example.com/a?b=1.", "https://example.com/a?b=1"),
        ("(http://example.com/x), e https://other.org", "http://example.com/x"),
        ("HTTPS://Example.com/Menu!", "HTTPS://Example.com/Menu"),
        ("no link, example.com is not one", None),
        ("https:// nothing", None),
    ],
)
def test_the_first_link_as_the_text_has_it(text: str, url: str | None) -> None:
    assert first_url(text) == url


def test_open_graph_first_then_title_and_description() -> None:
    og = (
        '<head><title>T</title><meta property="og:title" content="OG &amp; co">'
        '<meta name="description" content="plain"><meta property="og:image" '
        'content="../img/a.png"></head>'
    )
    assert read_page(og, "https://example.com/p/q") == (
        "OG & co",
        "plain",
        "https://example.com/img/a.png",
    )
    assert read_page("<title>\n  Só \n o título </title>", "https://x.org/") == (
        "Só o título",
        None,
        None,
    )
    assert read_page("<p>nothing</p>", "https://x.org/") == (None, None, None)


def test_the_thumbnail_is_a_small_jpeg() -> None:
    big = io.BytesIO()
    Image.new("RGBA", (1200, 600), (0, 0, 255, 128)).save(big, format="PNG")
    with Image.open(io.BytesIO(thumbnail(big.getvalue()))) as img:
        assert (img.format, img.size) == ("JPEG", (300, 150))
    assert thumbnail(png_bytes())[:2] == b"\xff\xd8"


async def test_a_private_address_is_refused_before_any_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    previews = LinkPreviews(allow_private=False)
    caplog.set_level("INFO", logger="zapgate.services.preview")
    assert await previews.for_text("http://127.0.0.1:9/x", label="u1/a") is None
    assert await previews.for_text("no link at all", label="u1/a") is None
    assert "sent without a link preview of 127.0.0.1" in caplog.text
