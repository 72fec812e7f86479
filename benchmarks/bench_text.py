"""Micro-benchmark: vectorized ``clean_text`` vs per-row selectolax on ~1.2 KB HTML product descriptions.

Usage::

    .venv/bin/python -m benchmarks.bench_text [--rows 100000] [--double-encoded]

Prints rows/s and MB/s for both, plus the share of rows on which the two agree after whitespace
normalization. The descriptions are generated here (own words, OpenCart-like markup: paragraphs, a
feature list, inline emphasis, entities, a comment and the odd ``<br>``).
"""

from __future__ import annotations

import argparse
import html
import os
import random
import re
import time

import polars as pl
from selectolax.lexbor import LexborHTMLParser

from aac_etl.lib.text import BLOCK_TAGS, clean_text
from benchmarks.words import WORDS as _WORDS

_ENTITIES = (
    "&amp;",
    "&nbsp;",
    "&rsquo;",
    "&mdash;",
    "&reg;",
    "&trade;",
    "&#8217;",
    "&#x2013;",
    "&quot;",
    "&eacute;",
)


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 16))]
    if rng.random() < 0.5:
        words.insert(rng.randrange(len(words)), rng.choice(_ENTITIES))
    if rng.random() < 0.3:
        i = rng.randrange(len(words))
        words[i] = f"<strong>{words[i]}</strong>"
    return " ".join(words).capitalize() + "."


def make_description(rng: random.Random) -> str:
    """Return one ~1.2 KB HTML description."""
    parts = ['<div class="product-description">']
    while sum(len(p) for p in parts) < 800:
        parts.append("<p>\r\n\t" + " ".join(_sentence(rng) for _ in range(rng.randint(1, 3))) + "</p>\r\n")
    parts.append("<ul>\r\n")
    while sum(len(p) for p in parts) < 1150:
        parts.append("\t<li>" + _sentence(rng) + "</li>\r\n")
    parts.append("</ul>\r\n<p>Care:<br />machine wash 30&deg;C</p></div><!-- end description -->")
    return "".join(parts)


def make_descriptions(rows: int, seed: int = 7) -> list[str]:
    """Return ``rows`` distinct descriptions (1,000 layouts, each row with its own model number and words)."""
    rng = random.Random(seed)  # noqa: S311 - test data
    layouts = [make_description(rng) for _ in range(min(rows, 1000))]
    out: list[str] = []
    for i in range(rows):
        words = " ".join(rng.choice(_WORDS) for _ in range(3))
        out.append(layouts[i % len(layouts)].replace("<p>", f"<p>Model X{i} {words}. ", 1))
    return out


def selectolax_text(value: str) -> str:
    """Per-row reference rendering with selectolax (lexbor): block tags separate words."""
    tree = LexborHTMLParser(value)
    tree.strip_tags(["script", "style"])
    for tag in BLOCK_TAGS:
        for node in tree.css(tag):
            node.insert_before(" ")
            node.insert_after(" ")
    root = tree.body or tree.root
    text = root.text(separator="") if root is not None else ""
    return re.sub(r"\s+", " ", text).strip()


def main() -> None:
    """Run the benchmark and print the numbers."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--selectolax-rows", type=int, default=20_000)
    parser.add_argument("--double-encoded", action="store_true", help="escape the HTML once more (OpenCart)")
    args = parser.parse_args()

    values = make_descriptions(args.rows)
    if args.double_encoded:
        values = [html.escape(v, quote=True) for v in values]
    series = pl.Series("description", values)
    megabytes = float(series.str.len_bytes().cast(pl.Float64).sum()) / 1e6
    print(f"rows={args.rows:,} avg_bytes={megabytes * 1e6 / args.rows:,.0f} total={megabytes:,.1f} MB")

    clean_text(series.head(1000))  # warm-up
    start, cpu_start = time.perf_counter(), time.process_time()
    ours = clean_text(series, double_encoded=True if args.double_encoded else None)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(
        f"clean_text          {args.rows / elapsed:>12,.0f} rows/s  {megabytes / elapsed:>8,.1f} MB/s"
        f"  (cpu {cpu:.2f}s on {pl.thread_pool_size()} threads, load {os.getloadavg()[0]:.1f})"
    )

    n = min(args.selectolax_rows, args.rows)
    sample = [html.unescape(v) for v in values[:n]] if args.double_encoded else values[:n]
    start = time.perf_counter()
    reference = [selectolax_text(v) for v in sample]
    elapsed = time.perf_counter() - start
    print(f"selectolax per row  {n / elapsed:>12,.0f} rows/s  (on {n:,} rows)")

    agree = sum(a == (b or None) for a, b in zip(ours.head(n).to_list(), reference, strict=True))
    print(f"agreement           {agree / n:>12.2%}")


if __name__ == "__main__":
    main()
