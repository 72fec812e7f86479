"""Golden tests for aac_etl.lib.text: one test per text rule of the field-mapping reference, plus oracle
comparisons on the real OpenCart 3 and PrestaShop 8 catalogs (selectolax and stdlib html.parser).
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest
from selectolax.lexbor import LexborHTMLParser

from aac_etl.lib import text as text_module
from aac_etl.lib.text import (
    BLOCK_TAGS,
    clean_text,
    collapse_whitespace,
    collapse_whitespace_series,
    decode_entities,
    html_to_text,
    markdown_to_text,
    may_hold_bytes,
    render_rich_text,
    rich_text_to_text,
    strip_shortcodes,
    strip_tags,
)

# ----------------------------------------------------------------------------------------------------
# Helpers: a tiny MySQL INSERT reader and two independent HTML -> text oracles
# ----------------------------------------------------------------------------------------------------

_SQL_VALUE = re.compile(r"\s*(NULL|-?\d+(?:\.\d+)?|'(?:[^'\\]|\\.|'')*')\s*(,|\))", re.S)
_SQL_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "0": "\0", "Z": "\x1a"}


def _sql_string(token: str) -> str:
    body = token[1:-1].replace("''", "'")
    return re.sub(r"\\(.)", lambda m: _SQL_ESCAPES.get(m.group(1), m.group(1)), body, flags=re.S)


def read_insert(sql: str, table: str) -> list[dict[str, object]]:
    """Rows of every ``INSERT INTO `table` (cols) VALUES (...), (...);`` statement of a MySQL dump."""
    rows: list[dict[str, object]] = []
    head = re.compile(r"INSERT INTO `" + re.escape(table) + r"` \(([^)]*)\) VALUES\s*")
    for match in head.finditer(sql):
        columns = [c.strip(" `") for c in match.group(1).split(",")]
        pos = match.end()
        while sql[pos] == "(":
            pos += 1
            values: list[object] = []
            while True:
                m = _SQL_VALUE.match(sql, pos)
                assert m, sql[pos : pos + 80]
                token = m.group(1)
                values.append(
                    None if token == "NULL" else _sql_string(token) if token.startswith("'") else float(token)
                )
                pos = m.end()
                if m.group(2) == ")":
                    break
            rows.append(dict(zip(columns, values, strict=True)))
            while sql[pos] in ", \r\n":
                pos += 1
    return rows


def _normalize(text: str) -> str | None:
    out = re.sub(r"\s+", " ", text).strip()
    return out or None


def selectolax_text(value: str) -> str | None:
    """Oracle 1: lexbor's HTML5 parser; block elements get a space on both sides."""
    tree = LexborHTMLParser(value)
    tree.strip_tags(["script", "style"])
    for tag in BLOCK_TAGS:
        for node in tree.css(tag):
            node.insert_before(" ")
            node.insert_after(" ")
    root = tree.body or tree.root
    return _normalize(root.text(separator="") if root is not None else "")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        elif tag in BLOCK_TAGS:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip = max(0, self.skip - 1)
        elif tag in BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def html_parser_text(value: str) -> str | None:
    """Oracle 2: the stdlib event parser."""
    parser = _TextExtractor()
    parser.feed(value)
    parser.close()
    return _normalize("".join(parser.parts))


@pytest.fixture(scope="module")
def opencart_descriptions(real_data_dir: Path) -> list[dict[str, object]]:
    sql = (real_data_dir / "opencart-3.0" / "opencart.sql").read_text(encoding="utf-8")
    rows = read_insert(sql, "oc_product_description")
    assert len(rows) >= 15
    return rows


# ----------------------------------------------------------------------------------------------------
# Rules
# ----------------------------------------------------------------------------------------------------


def test_rule_title_plain_text_html_and_shortcodes_stripped() -> None:
    titles = pl.Series(
        "title",
        [
            "<b>Blue</b> Running&nbsp;Shoes",
            '[caption id="attachment_7" align="alignleft"]Trail Runner[/caption]',
            "  Kettle &amp; Toaster  ",
            'Mug [gallery ids="1,2"] Set',
        ],
    )
    assert clean_text(titles).to_list() == [
        "Blue Running Shoes",
        "Trail Runner",
        "Kettle & Toaster",
        "Mug Set",
    ]


def test_rule_shortcodes_keep_inner_text_and_ordinary_brackets() -> None:
    s = pl.Series(
        [
            '[caption id="x" width="300"]<img src="a.jpg" /> Front view[/caption] after',
            "[vc_row][vc_column]Built with a page builder[/vc_column][/vc_row]",
            "[note]wrapped[/note] and [NEW] arrival, self [separator /] closing",
            "See [the manual](https://example.com/m.pdf)",
        ]
    )
    assert clean_text(s, markdown=True).to_list() == [
        "Front view after",
        "Built with a page builder",
        "wrapped and [NEW] arrival, self closing",
        "See the manual",
    ]
    assert strip_shortcodes(pl.Series(["[gallery]x"])).to_list() == [" x"]


def test_rule_description_html_stripped_entities_decoded() -> None:
    s = pl.Series(
        [
            "<p>Don&rsquo;t miss &#8217;em &#x2019; &copy;2024 &amp; more &lt;b&gt; is text</p>",
            "<ul><li>One</li><li>Two</li></ul><p>Para<br>line<br/>break</p>",
            "<span>in</span><b>line</b> tags join, <a href='x' title=\"a>b\">links</a> too",
        ]
    )
    assert clean_text(s).to_list() == [
        "Don’t miss ’em ’ ©2024 & more <b> is text",
        "One Two Para line break",
        "inline tags join, links too",
    ]


def test_rule_description_script_style_and_comments_dropped() -> None:
    s = pl.Series(
        [
            '<style>p{color:red}</style><p>Visible</p><script type="text/javascript">var a = "<p>x</p>";</script>',
            "Before<!-- hidden <p>tag</p> -->After <SCRIPT>alert(1)</SCRIPT>end",
        ]
    )
    assert clean_text(s).to_list() == ["Visible", "BeforeAfter end"]


def test_rule_description_double_encoded_html_decoded_stripped_decoded_again() -> None:
    raw = "&lt;p&gt;\r\n\tYou don&amp;rsquo;t lose 3D &amp;amp; Touch&lt;/p&gt;\r\n&lt;!-- end --&gt;"
    expected = ["You don’t lose 3D & Touch"]
    assert clean_text(pl.Series([raw]), double_encoded=True).to_list() == expected
    assert clean_text(pl.Series([raw])).to_list() == expected  # detected per value
    assert html_to_text(pl.Series([raw])).to_list() == expected


def test_rule_double_encoding_detected_per_value_in_a_mixed_column() -> None:
    s = pl.Series(["&lt;p&gt;A&amp;amp;B&lt;/p&gt;", "<p>A&amp;B &amp;lt;p&amp;gt;</p>", None, "plain &amp; simple"])
    assert clean_text(s).to_list() == ["A&B", "A&B &lt;p&gt;", None, "plain & simple"]


def test_rule_description_empty_becomes_null() -> None:
    s = pl.Series(["", "   ", "<p>&nbsp;</p>", None, "<br/>", '[gallery ids="3"]'])
    assert clean_text(s).to_list() == [None] * 6


@pytest.mark.parametrize(
    "values",
    [
        ["https://x.io/a.jpg", " https://x.io/b.jpg ", "", None],
        ["https://x.io/a.jpg", "", None, "caf\u00e9"],
        ["a  b", "https://x.io/c.jpg"],
        ["tab\there", "plain"],
        ["nbsp\u00a0here", "plain"],
        ["thin\u2009space", "ideographic\u3000space", "nel\u0085x", "ogham\u1680x"],
        ["caf\u00e9 \u2013 na\u00efve", "  "],
        [None, None],
    ],
)
def test_collapse_whitespace_series_equals_the_expression(values: list[str | None]) -> None:
    s = pl.Series("v", values, dtype=pl.String)
    expected = s.to_frame().select(collapse_whitespace(pl.col("v"))).to_series()
    got = collapse_whitespace_series(s)
    assert got.to_list() == expected.to_list()
    assert got.name == "v"
    chunked = pl.concat([pl.Series("v", ["plain"]), s], rechunk=False)
    assert collapse_whitespace_series(chunked).to_list()[1:] == expected.to_list()


@pytest.mark.parametrize(
    ("values", "below", "among", "expected"),
    [
        (["plain", "ascii"], 0x20, (0x7F,), False),
        (["tab\there"], 0x20, (), True),
        (["del\x7fhere"], 0x20, (0x7F,), True),
        (["caf\u00e9", "plain"], 0x20, (0x7F,), False),  # bytes above 0x7F, none equal to it
        (["caf\u00e9"], 0x20, (0xC3,), True),  # the lead byte of é, inside the column's byte range
        (["nbsp\u00a0"], 0x20, (0xC2, 0xE2), True),
        (["plain"], 0x20, (0xC2, 0xE2), False),  # above the highest byte: no comparison pass needed
        ([], 0x20, (0x7F,), False),
    ],
)
def test_may_hold_bytes_finds_exactly_the_bytes_asked_for(
    values: list[str], below: int, among: tuple[int, ...], expected: bool
) -> None:
    s = pl.Series("v", values, dtype=pl.String)
    assert may_hold_bytes(s, below=below, among=among) is expected
    assert may_hold_bytes(pl.Series([1, 2]), below=below, among=among) is True


def test_rule_whitespace_collapsed_nbsp_is_space() -> None:
    s = pl.Series(["  a\u00a0\u00a0b\r\n\t c\u2009d\u3000e  "])
    assert clean_text(s).to_list() == ["a b c d e"]
    assert pl.DataFrame({"v": ["  x  y ", " "]}).select(collapse_whitespace(pl.col("v")))["v"].to_list() == [
        "x y",
        None,
    ]


def test_rule_description_markdown_rendered_to_text() -> None:
    md = (
        "# Trail Runner 2 #\n\nA **light** and _grippy_ shoe with ~~old~~ `Vibram` sole.\n\n"
        "- breathable mesh\n- [size guide](https://example.com/sizes)\n1. ![Side view](side.jpg)\n\n"
        "> Best in class\n\n***\n\n```\ncode block\n```\nsnake_case_name stays, 2 * 3 = 6\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\nSee [docs][1].\n\n[1]: https://example.com/docs\n"
    )
    assert clean_text(pl.Series([md]), markdown=True).to_list() == [
        "Trail Runner 2 A light and grippy shoe with old Vibram sole. breathable mesh size guide Side view "
        "Best in class code block snake_case_name stays, 2 * 3 = 6 a b 1 2 See docs."
    ]
    assert markdown_to_text(pl.Series(["## Title\n**b**"])).to_list() == ["Title\nb"]


def test_rule_markdown_only_when_the_source_says_so() -> None:
    assert clean_text(pl.Series(["**not** markdown_here"])).to_list() == ["**not** markdown_here"]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        pytest.param(  # Shopify rich text metafield
            {
                "type": "root",
                "children": [
                    {"type": "heading", "level": 2, "children": [{"type": "text", "value": "Specs"}]},
                    {
                        "type": "paragraph",
                        "children": [
                            {"type": "text", "value": "Light"},
                            {"type": "text", "value": "weight", "bold": True},
                            {"type": "link", "url": "/x", "children": [{"type": "text", "value": " shoe"}]},
                        ],
                    },
                    {
                        "type": "list",
                        "children": [{"type": "list-item", "children": [{"type": "text", "value": "A"}]}],
                    },
                ],
            },
            "Specs Lightweight shoe A",
            id="shopify",
        ),
        pytest.param(  # Contentful rich text
            {
                "nodeType": "document",
                "data": {},
                "content": [
                    {
                        "nodeType": "paragraph",
                        "data": {},
                        "content": [
                            {"nodeType": "text", "value": "Hello ", "marks": [], "data": {}},
                            {
                                "nodeType": "hyperlink",
                                "data": {"uri": "https://x"},
                                "content": [{"nodeType": "text", "value": "world", "marks": [], "data": {}}],
                            },
                        ],
                    },
                    {"nodeType": "paragraph", "data": {}, "content": [{"nodeType": "text", "value": "Bye"}]},
                ],
            },
            "Hello world Bye",
            id="contentful",
        ),
        pytest.param(  # Strapi blocks
            [
                {
                    "type": "paragraph",
                    "children": [{"type": "text", "text": "Warm "}, {"type": "text", "text": "wool"}],
                },
                {"type": "paragraph", "children": [{"type": "text", "text": "Hand wash", "italic": True}]},
            ],
            "Warm wool Hand wash",
            id="strapi",
        ),
        pytest.param(  # Sanity Portable Text
            [
                {"_type": "block", "style": "h1", "children": [{"_type": "span", "text": "Title"}]},
                {
                    "_type": "block",
                    "children": [{"_type": "span", "text": "Body "}, {"_type": "span", "text": "x"}],
                },
            ],
            "Title Body x",
            id="portable-text",
        ),
        pytest.param(  # Editor.js (inline HTML in text)
            {"blocks": [{"type": "paragraph", "data": {"text": "Soft <b>cotton</b> &amp; linen"}}]},
            "Soft cotton & linen",
            id="editorjs",
        ),
    ],
)
def test_rule_description_rich_text_json_rendered(document: object, expected: str) -> None:
    assert clean_text(pl.Series([json.dumps(document)])).to_list() == [expected]


def test_rich_text_leaves_non_rich_json_and_bracket_text_alone() -> None:
    s = pl.Series(["[1, 2, 3]", '{"sku": 5}', "[Limited] edition", "{not json"])
    assert rich_text_to_text(s).to_list() == s.to_list()
    assert render_rich_text('{"type": "root", "children": []}') == ""
    assert clean_text(pl.Series(['{"type": "root", "children": []}'])).to_list() == [None]
    assert render_rich_text("nope") is None


def test_decode_entities_equals_html_unescape() -> None:
    values = [
        "&amp;&lt;&gt;&quot;&#39;&apos;",
        "&copy2024 &notit; &notin; &ampx &AMP; &#0; &#x110000; &#128; &#8217 &#X41;",
        "a & b && c &; &#; &#x; &zz; AT&T",
        "&amp;rsquo; stays one level",
        None,
    ]
    decoded = decode_entities(pl.Series(values)).to_list()
    assert decoded == [html.unescape(v) if v is not None else None for v in values]


def test_fast_path_equals_regex_reference_including_markup_outside_the_sample() -> None:
    common = "<p>\r\n\tCommon <strong>markup</strong> &amp; text</p>\r\n<ul><li>a</li><li>b</li></ul>"
    rare = [
        "<div class=\"odd\" data-x='1>2'>Rare<br>one</div>",
        "<table><tr><td>c1</td><td>c2</td></tr></table>",
        "<p>x</p><script>bad()</script><style>.a{}</style><!-- c -->y",
        "<P CLASS=Loud>Upper</P><em>case</em>",
        "&lt;p&gt; literal &amp;lt;",
    ]
    values = [common] * 5000 + rare
    s = pl.Series(values)
    reference = s.to_frame("v").select(strip_tags(pl.col("v"))).to_series()
    reference = decode_entities(reference).to_frame("v").select(collapse_whitespace(pl.col("v"))).to_series()
    fast = html_to_text(s, double_encoded=False)
    assert fast.to_list() == reference.to_list()
    assert fast.to_list()[-5:] == ["Rare one", "c1 c2", "x y", "Upper case", "<p> literal &lt;"]


@pytest.mark.parametrize(
    ("encoded", "values", "expected"),
    [
        (False, ["a\ufdd0b &lt;i&gt; c\ufdd1", "<p>x &lt; y</p>"], ["a\ufdd0b <i> c\ufdd1", "x < y"]),
        (True, ["&lt;b&gt;\ufdd1 &amp;lt;3&lt;/b&gt;", "&lt;p&gt;z&lt;/p&gt;"], ["\ufdd1 <3", "z"]),
    ],
)
def test_placeholder_noncharacters_in_the_input_stay_what_they_are(
    encoded: bool, values: list[str], expected: list[str]
) -> None:
    # A decoded ``<``/``>`` is parked on U+FDD0/U+FDD1 while the markup rules run; the same characters in the input
    # must not come out as ``<``/``>``.
    s = pl.Series(values)
    out = html_to_text(s, double_encoded=encoded).to_list()
    assert out == expected
    assert out == _reference(s, encoded=encoded)


def _reference(s: pl.Series, *, encoded: bool) -> list[str | None]:
    """The regex reference rules: undo the outer escaping, strip tags, decode entities, collapse whitespace."""
    once = decode_entities(s) if encoded else s
    stripped = once.to_frame("v").select(strip_tags(pl.col("v"))).to_series()
    return decode_entities(stripped).to_frame("v").select(collapse_whitespace(pl.col("v"))).to_series().to_list()


# One value outside the spread sample of a long column, and whether the entity
# tokens of the sample miss one there, so that the column needs its full token scan.
_RARE_PLAIN = [
    ("<p>wait&hellip; done</p>", True),
    ("x &notin; y", True),
    ("&#82171; code", True),
    ("&#x1F600; code", True),
    ("caf&eacute&amp", True),
    ("&amp;rsquo; is decoded once, but looks like a missed token", True),
    ("AT&T and R&D", False),
    ("<b>caf&eacute; &#8217;</b>", False),
]
_RARE_ENCODED = [
    ("&lt;p&gt;wait&amp;hellip; done&lt;/p&gt;", True),
    ("x &amp;notin; y", True),
    ("&amp;#82171; code", True),
    ("&nbsp;z", True),
    ("&#8230; &amp;#x2026;", True),
    ("&#60;b&#62;bold&#60;/b&#62;", True),
    ("caf&amp;eacute&amp;amp", True),
    ("&lt;b&gt;AT&amp;amp;T&lt;/b&gt;", False),
]


def _long_column(common: list[str], rare: str) -> pl.Series:
    values = common * (5000 // len(common))
    values.insert(1000, rare)
    s = pl.Series(values)
    sample = text_module._spread_sample(s).to_list()
    assert rare not in sample
    assert set(common) <= set(sample)
    return s


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """The ``sampled`` argument of every HTML scan, in call order (True: tokens from the sample, False: full)."""
    calls: list[bool] = []
    scan = text_module._html_scan

    def counted(s: pl.Series, *, encoded: bool, sampled: bool = True) -> dict[str, object]:
        calls.append(sampled)
        return scan(s, encoded=encoded, sampled=sampled)

    monkeypatch.setattr(text_module, "_html_scan", counted)
    return calls


@pytest.mark.parametrize(
    ("encoded", "rare", "full_scan"),
    [(False, *case) for case in _RARE_PLAIN] + [(True, *case) for case in _RARE_ENCODED],
)
def test_entities_outside_the_sample_are_decoded(scans: list[bool], encoded: bool, rare: str, full_scan: bool) -> None:
    if encoded:
        common = ["&lt;p&gt;Design &amp;amp; caf&amp;eacute;&lt;/p&gt;", "&lt;i&gt;x&lt;/i&gt; &amp;#8217; 2"]
    else:
        common = ["<p>Design &amp; caf&eacute;</p>", "<i>x</i> &#8217; 2"]
    s = _long_column(common, rare)
    out = html_to_text(s, double_encoded=encoded).to_list()
    assert out == _reference(s, encoded=encoded)
    assert out[:2] == ["Design & caf\u00e9", "x \u2019 2"]
    assert scans == ([True, False] if full_scan else [True])


def test_the_sample_sees_every_language_of_interleaved_rows(scans: list[bool]) -> None:
    # Documents come product by product, each in every language: a sampling step that is a multiple of the number
    # of languages would see one of them only, and miss every entity of the others.
    for languages in (2, 3, 4):
        scans.clear()
        rows = ["<p>Design &amp; more</p>", "<p>Geh&auml;use &amp; Ma&szlig;e</p>", "<p>Caf&eacute;</p>", "Pi&ntilde;a"]
        s = pl.Series(rows[:languages] * (8000 // languages))
        assert html_to_text(s).to_list()[:2] == ["Design & more", "Geh\u00e4use & Ma\u00dfe"]
        assert scans == [True]


@pytest.mark.parametrize("encoded", [False, True])
def test_a_sampled_entity_without_semicolon_never_decodes_the_start_of_a_longer_one(encoded: bool) -> None:
    # ``&not`` is in the sample, ``&notin;`` only outside it: decoding ``&not`` there would leave "\u00acin;".
    common = ["&amp;not 1 &amp;#8217 2"] if encoded else ["&not 1 &#8217 2"]
    rare = "x &amp;notin; &amp;#82171; y" if encoded else "x &notin; &#82171; y"
    s = _long_column(common, rare)
    out = html_to_text(s, double_encoded=encoded).to_list()
    assert out == _reference(s, encoded=encoded)
    assert out[1000] == "x \u2209 \U00082171 y".replace("\U00082171", chr(82171))


def test_dropped_elements_scan_catches_what_the_regex_drops() -> None:
    # The regex is case-insensitive in Unicode, where the long s (U+017F) is an s: the scan must see it too.
    values = ["A<\u017fcript>x()</\u017fcript>B", "A<\u017ftyle>.a{}</style>B", "C<SCRIPT >y</script>D"]
    s = pl.Series(values)
    reference = s.to_frame("v").select(strip_tags(pl.col("v"))).to_series()
    reference = decode_entities(reference).to_frame("v").select(collapse_whitespace(pl.col("v"))).to_series()
    assert html_to_text(s, double_encoded=False).to_list() == reference.to_list() == ["AB", "AB", "CD"]
    encoded = pl.Series([v.replace("<", "&lt;").replace(">", "&gt;") for v in values])
    assert html_to_text(encoded, double_encoded=True).to_list() == ["AB", "AB", "CD"]


def test_repetitive_columns_render_each_distinct_value_once_with_the_same_result() -> None:
    values = ["<b>16&nbsp;GB</b>", "Yes", None, "[caption]Red &amp; blue[/caption]", "  Yes ", "&lt;i&gt;x&lt;/i&gt;"]
    s = pl.Series("text", values * 700)
    one_by_one = [clean_text(pl.Series([v], dtype=pl.Utf8)).item() for v in values] * 700
    cleaned = clean_text(s)
    assert cleaned.name == "text"
    assert cleaned.to_list() == one_by_one
    assert cleaned.to_list()[:6] == ["16 GB", "Yes", None, "Red & blue", "Yes", "x"]


def test_clean_text_leaves_its_input_series_alone() -> None:
    # Mixed columns (escaped and plain values, rich text) are rendered in parts and put back with ``scatter``,
    # which works in place: the caller's series must not change.
    values = ["&lt;i&gt;x&lt;/i&gt;", "<b>plain</b>", '{"type": "doc", "content": [{"type": "text", "text": "Rich"}]}']
    s = pl.Series("v", values)
    assert clean_text(s).to_list() == ["x", "plain", "Rich"]
    assert html_to_text(s).to_list()[:2] == ["x", "plain"]
    assert s.to_list() == values


def test_clean_text_keeps_name_length_and_casts() -> None:
    out = clean_text(pl.Series("description", [1, None], dtype=pl.Int64))
    assert out.name == "description"
    assert out.dtype == pl.Utf8
    assert out.to_list() == ["1", None]
    assert clean_text(pl.Series("t", [], dtype=pl.Utf8)).to_list() == []


# ----------------------------------------------------------------------------------------------------
# Oracles on real catalogs
# ----------------------------------------------------------------------------------------------------


def test_opencart_descriptions_agree_with_selectolax_and_html_parser(
    opencart_descriptions: list[dict[str, object]],
) -> None:
    raw = [str(r["description"]) for r in opencart_descriptions]
    ours_forced = clean_text(pl.Series(raw), double_encoded=True).to_list()
    ours_auto = clean_text(pl.Series(raw)).to_list()
    once = [html.unescape(v) for v in raw]  # OpenCart stores htmlspecialchars(html)
    assert ours_forced == [selectolax_text(v) for v in once]
    assert ours_forced == [html_parser_text(v) for v in once]
    assert ours_auto == ours_forced
    by_id = {
        int(str(r["product_id"]).split(".")[0]): t for r, t in zip(opencart_descriptions, ours_forced, strict=True)
    }
    assert by_id[44].startswith(
        "MacBook Air is ultrathin, ultraportable, and ultra unlike anything else. But you don’t"
    )


def test_opencart_names_decode_once(opencart_descriptions: list[dict[str, object]]) -> None:
    names = [str(r["name"]) for r in opencart_descriptions]
    assert clean_text(pl.Series(names), double_encoded=False).to_list() == [_normalize(html.unescape(n)) for n in names]


@pytest.mark.parametrize("lang", ["en", "fr", "fa"])
def test_prestashop_descriptions_agree_with_selectolax_and_html_parser(real_data_dir: Path, lang: str) -> None:
    path = real_data_dir / "prestashop-8.0-fashion" / "fixtures" / "fashion" / "langs" / lang / "data" / "product.xml"
    root = ET.parse(path).getroot()  # noqa: S314 - trusted local fixture
    values: list[str] = []
    for product in root.iter("product"):
        for field in ("description", "description_short", "name"):
            node = product.find(field)
            if node is not None and node.text:
                values.append(node.text)
    assert len(values) >= 40
    ours = clean_text(pl.Series(values)).to_list()
    assert ours == [selectolax_text(v) for v in values]
    assert ours == [html_parser_text(v) for v in values]
    if lang == "fa":
        assert any(t is not None and "پرنده زرین بال" in t for t in ours)


def test_data_bytes_are_the_values_bytes_without_importing_pyarrow_compute() -> None:
    # pl.Series(<pyarrow array>) imports pyarrow.compute first (26 ms in the first normalize of a process); the bytes
    # are handed over through the Arrow PyCapsule interface instead. A fresh interpreter shows what gets imported.
    script = (
        "import sys, polars as pl\n"
        "from aac_etl.lib.text import data_bytes\n"
        "views = data_bytes(pl.Series(['ab', None, 'é']))\n"
        "print(bytes(views[0].to_list()).decode(), 'pyarrow.compute' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.split() == ["abé", "False"]


def test_large_columns_stream_small_ones_and_work_beside_other_work_stay_in_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engines: list[str] = []
    collect = pl.LazyFrame.collect

    def spy(self: pl.LazyFrame, *args: object, **kwargs: object) -> object:
        if "engine" in kwargs:  # eager calls (``DataFrame.select``) collect without naming an engine
            engines.append(str(kwargs["engine"]))
        return collect(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pl.LazyFrame, "collect", spy)
    small = pl.Series(["<p>a &amp; b</p>", "<br>c"] * 10)
    large = pl.Series(["<p>a &amp; b</p>", "<br>c"] * 5_000)

    def rendered(s: pl.Series) -> tuple[list[str | None], set[str]]:
        engines.clear()
        out = html_to_text(s, double_encoded=False).to_list()
        return out, set(engines)

    small_text, small_engines = rendered(small)
    large_text, large_engines = rendered(large)
    with text_module.beside_other_work():
        with text_module.beside_other_work():
            pass
        beside_text, beside_engines = rendered(large)
    after_text, after_engines = rendered(large)
    assert small_engines == {"in-memory"}
    assert large_engines == {"streaming"}
    assert beside_engines == {"in-memory"}
    assert after_engines == {"streaming"}
    assert beside_text == after_text == large_text
    assert small_text == large_text[:20] == ["a & b", "c"] * 10
