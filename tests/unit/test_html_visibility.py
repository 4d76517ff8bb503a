"""Nothing a reader cannot see is indexed (issue 15, kind 3): CSS, attributes and colour."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexing.html import HtmlText, convert_html, html_to_markdown
from indexing.readers import load_documents

CASES = Path(__file__).resolve().parent.parent / "data" / "cases" / "ingest"


def test_handed_page_keeps_only_what_a_reader_sees():
    text = load_documents(CASES / "hidden.html", max_file_mb=5)[0].text
    assert "# Office supplies" in text and "## Toner" in text
    assert "Printer paper is ordered every Monday" in text and "cabinet B" in text
    canaries = (
        "swordfish",
        "opacity-canary",
        "offscreen-canary",
        "fontsize-canary",
        "visible-inline-hidden-canary",
        "white-on-white-canary",
        "script-canary",
    )
    for canary in canaries:
        assert canary not in text, canary


def test_convert_html_counts_the_hidden_elements_it_dropped():
    converted = convert_html((CASES / "hidden.html").read_text())
    assert isinstance(converted, HtmlText)
    # class rule, opacity, off screen, font-size 0, inline display:none, white on white
    assert converted.hidden_removed == 6
    assert html_to_markdown((CASES / "hidden.html").read_text()) == converted.text


HIDDEN = {
    "id rule in a style block": "<style>#promo { display: none }</style><p id='promo'>CANARY</p>",
    "visibility hidden from a style block": (
        "<style>div.note > p { visibility: hidden }</style><div class='note'><p>CANARY</p></div>"
    ),
    "visibility collapse": "<p style='visibility: collapse'>CANARY</p>",
    "attribute selector": (
        "<style>[data-x='1'] span { opacity: 0 }</style><div data-x='1'><span>CANARY</span></div>"
    ),
    ":has() selector": (
        "<style>div:has(> .m) { display: none }</style><div><b class='m'>CANARY</b></div>"
    ),
    "selector soupsieve reads, cssselect2 does not": (
        "<style>input:required + label { display: none }</style><input required>"
        "<label>CANARY</label>"
    ),
    "inherited white on white": "<div style='color: #fff'><section><p>CANARY</p></section></div>",
    "inherited black on black": (
        "<div style='background: black'><section style='color: rgb(0 0 0)'><p>CANARY</p>"
        "</section></div>"
    ),
    "colour name and hex alike": (
        "<style>.w { color: white; background-color: #FFFFFF }</style><p class='w'>CANARY</p>"
    ),
    "nearly the background colour": "<p style='color: #fcfcfc'>CANARY</p>",
    "background: currentColor": "<p style='color: red; background: currentColor'>CANARY</p>",
    "transparent text": "<p style='color: transparent'>CANARY</p>",
    "almost transparent text": "<p style='color: rgba(0, 0, 0, 0.02)'>CANARY</p>",
    "opacity 0%": "<p style='opacity: 0%'>CANARY</p>",
    "font: 0/0 a": "<style>.ir { font: 0/0 a }</style><a class='ir'>CANARY</a>",
    "font-size 0 in em inherited": (
        "<div style='font-size: 0'><span style='font-size: 2em'>CANARY</span></div>"
    ),
    "text-indent off screen": "<h2 style='text-indent: -9999px'>CANARY</h2>",
    "fixed and off to the top": "<p style='position: fixed; top: -2000px'>CANARY</p>",
    "inset shorthand off screen": (
        "<p style='position: absolute; inset: 0 auto auto -100vw'>CANARY</p>"
    ),
    "screen-reader-only class": (
        "<style>.sr-only { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; "
        "overflow: hidden; clip: rect(0, 0, 0, 0); border: 0 }</style>"
        "<span class='sr-only'>CANARY</span>"
    ),
    "clip rect(0 0 0 0)": "<p style='position: absolute; clip: rect(0 0 0 0)'>CANARY</p>",
    "clip-path inset(100%)": "<p style='clip-path: inset(100%)'>CANARY</p>",
    "zero height with overflow hidden": "<div style='height: 0; overflow: hidden'>CANARY</div>",
    "zero width with overflow clip": "<div style='width: 0px; overflow-x: clip'>CANARY</div>",
    "transform scale(0)": "<p style='transform: scale(0)'>CANARY</p>",
    "content-visibility hidden": "<p style='content-visibility: hidden'>CANARY</p>",
    "important beats inline": (
        "<style>p.k { display: none !important }</style>"
        "<p class='k' style='display: block'>CANARY</p>"
    ),
    "CSS nesting": (
        "<style>.card { & .x { display: none } }</style><div class='card'><p class='x'>"
        "CANARY</p></div>"
    ),
    "@media nested in a rule": (
        "<style>.a { @media screen { opacity: 0 } }</style><p class='a'>CANARY</p>"
    ),
    "screen media query": (
        "<style>@media screen and (min-width: 600px) { .b { display: none } }</style>"
        "<p class='b'>CANARY</p>"
    ),
    "hidden attribute": "<div hidden>CANARY</div>",
    "aria-hidden": "<span aria-hidden='true'>CANARY</span>",
    "template": "<template><p>CANARY</p></template>",
    "noscript": "<noscript>CANARY</noscript>",
    "comment": "<!-- CANARY -->",
    "closed dialog": "<dialog><p>CANARY</p></dialog>",
}


@pytest.mark.parametrize("html", HIDDEN.values(), ids=HIDDEN.keys())
def test_hidden_text_is_dropped(html):
    text = html_to_markdown(f"<html><body><h1>Page</h1>{html}<p>Shown text.</p></body></html>")
    assert "CANARY" not in text
    assert "# Page" in text and "Shown text." in text


SHOWN = {
    "light text on a dark page": "<body style='background: #111; color: #eee'><p>SHOWN</p></body>",
    "white text over a background image": (
        "<div style='background: url(sky.png); color: #fff'>SHOWN</div>"
    ),
    "grey text on white": "<p style='color: #999'>SHOWN</p>",
    "a child made visible again": (
        "<div style='visibility: hidden'><span style='visibility: visible'>SHOWN</span></div>"
    ),
    "a child given a font size again": (
        "<div style='font-size: 0'><span style='font-size: 14px'>SHOWN</span></div>"
    ),
    "a more specific rule shows it": (
        "<style>#y.x { display: block } .x { display: none }</style><p id='y' class='x'>SHOWN</p>"
    ),
    "print-only rule": "<style>@media print { .a { display: none } }</style><p class='a'>SHOWN</p>",
    "print style sheet": "<style media='print'>.a { display: none }</style><p class='a'>SHOWN</p>",
    "narrow-screen rule": (
        "<style>@media (max-width: 400px) { .c { display: none } }</style><p class='c'>SHOWN</p>"
    ),
    "hover-only rule": "<style>p:hover { display: none }</style><p>SHOWN</p>",
    "pseudo-element rule": "<style>p::before { display: none }</style><p>SHOWN</p>",
    "invalid selector list drops the rule": "<style>p, a:::b { display: none }</style><p>SHOWN</p>",
    "small negative offset": "<p style='position: relative; left: -2px'>SHOWN</p>",
    "aria-hidden false": "<p aria-hidden='false'>SHOWN</p>",
}


@pytest.mark.parametrize("html", SHOWN.values(), ids=SHOWN.keys())
def test_visible_text_is_kept(html):
    converted = convert_html(html)
    assert "SHOWN" in converted.text and converted.hidden_removed == 0


def test_page_text_cannot_fake_markdown_structure():
    text = html_to_markdown(
        "<h1>Doc</h1><pre># a shell comment\nmake all</pre><p># not a heading</p>"
        "<p>~~~</p><p>Title<br>=====</p><h2>After</h2><p>Body.</p>"
    )
    assert "```\n# a shell comment\nmake all\n```" in text
    assert "\\# not a heading" in text and "\\~~~" in text and "\\=====" in text
    assert "## After" in text


def test_deeply_nested_page_does_not_overflow_the_stack():
    text = html_to_markdown("<div>" * 5000 + "deep text" + "</div>" * 5000)
    assert text == "deep text"


HTML_PIECES = [
    "<style>",
    "</style>",
    "<p>",
    "</p>",
    "<div style='",
    "'>",
    "{",
    "}",
    ":",
    ";",
    "display",
    "none",
    "color",
    "#fff",
    "rgb(",
    ")",
    "@media",
    "screen",
    "<h2>",
    "</h2>",
    "&",
    "::",
    "[",
    "]",
    "!important",
    "<!--",
    "-->",
    "<pre>",
    "`",
    "#",
    "\n",
    " ",
    "text",
    "font",
    "0/0",
    "clip",
    "rect(",
    ",",
    "calc(",
    "var(--x)",
    "%",
    "-9999px",
    "<br>",
    "<td>",
    "<li>",
    "oklch(",
    "\\",
    "url(",
    "scale(0)",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(HTML_PIECES), max_size=60).map("".join))
def test_any_markup_converts_without_error(html):
    converted = convert_html(html)
    assert converted.hidden_removed >= 0 and isinstance(converted.text, str)
