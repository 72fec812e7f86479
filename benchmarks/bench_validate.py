"""Micro-benchmark: ``validate_frame`` on a realistic document frame.

Usage::

    .venv/bin/python -m benchmarks.bench_validate [--rows 200000] [--repeat 3] [--bad-share 0.01]

Builds the frame once (product x locale documents with ~400-character descriptions, breadcrumbs, prices in
three currencies, option_* attributes, ``price_by_currency`` and ``images`` maps, and a small share of
defects),
then prints rows/s of the best of ``--repeat`` runs and the quarantine counts. Target: >= 100,000 rows/s on
2 cores (``POLARS_MAX_THREADS=2``).
"""

from __future__ import annotations

import argparse
import random
import time

import polars as pl

from aac_etl.lib.contract import load_contract
from aac_etl.lib.validate import validate_frame
from benchmarks.words import WORDS as _WORDS

_LOCALES = ("en", "de", "es", "fr", "ru")
_CATS = (
    ("Shoes", "Running", "Trail"),
    ("Home", "Kitchen"),
    ("Electronics", "Audio", "Headphones"),
    ("Garden",),
)
_COLORS = ("red", "blue", "black", "white", "green")


def build_frame(rows: int, bad_share: float, seed: int = 7) -> pl.DataFrame:
    """Return ``rows`` documents; about ``bad_share`` of them carry one defect."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data
    sentences = [" ".join(rng.choice(_WORDS) for _ in range(12)) + "." for _ in range(200)]
    cols: dict[str, list[object]] = {
        k: []
        for k in (
            "external_id",
            "title",
            "description",
            "sku",
            "brand",
            "categories",
            "category_ids",
            "tags",
            "price",
            "sale_price",
            "currency",
            "image_url",
            "product_url",
            "availability",
            "stock_quantity",
            "locale",
            "created_at",
            "updated_at",
            "attributes.option_color",
            "attributes.option_size",
            "attributes.weight_kg",
            "attributes.price_by_currency",
            "attributes.images",
            "_record_id",
        )
    }
    for i in range(rows):
        pk = i // len(_LOCALES)
        locale = _LOCALES[i % len(_LOCALES)]
        path = _CATS[pk % len(_CATS)]
        price = round(rng.uniform(5, 500), 2)
        cols["external_id"].append(f"{pk}:{locale}")
        cols["title"].append(f"{rng.choice(_WORDS).title()} {rng.choice(_WORDS)} {pk}")
        cols["description"].append(" ".join(rng.choice(sentences) for _ in range(5)))
        cols["sku"].append(f"SKU-{pk:07d}")
        cols["brand"].append(rng.choice(("Acme", "Globex", "Initech", None)))
        cols["categories"].append(list(path))
        cols["category_ids"].append([str(10 + j) for j in range(len(path))])
        cols["tags"].append(rng.sample(_WORDS, 2))
        cols["price"].append(price)
        cols["sale_price"].append(round(price * 0.8, 2) if rng.random() < 0.2 else None)
        cols["currency"].append(rng.choice(("USD", "EUR", "GBP")))
        cols["image_url"].append(f"https://cdn.example.com/p/{pk}/main.jpg")
        cols["product_url"].append(f"https://shop.example.com/{locale}/p/{pk}")
        cols["availability"].append(rng.choice(("in_stock", "out_of_stock", "preorder")))
        cols["stock_quantity"].append(rng.randint(0, 500))
        cols["locale"].append(locale)
        cols["created_at"].append(f"2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T10:00:00Z")
        cols["updated_at"].append("2024-05-01T08:30:00Z")
        cols["attributes.option_color"].append(rng.choice(_COLORS))
        cols["attributes.option_size"].append([str(s) for s in rng.sample(range(36, 46), 3)])
        cols["attributes.weight_kg"].append(round(rng.uniform(0.1, 5), 2))
        cols["attributes.price_by_currency"].append({"EUR": round(price * 0.92, 2), "GBP": round(price * 0.8, 2)})
        cols["attributes.images"].append(
            [{"url": f"https://cdn.example.com/p/{pk}/{n}.jpg", "alt": "view"} for n in range(2)]
        )
        cols["_record_id"].append(str(pk))
        if rng.random() < bad_share:
            defect = rng.randrange(4)
            if defect == 0:
                cols["currency"][-1] = "usd"
            elif defect == 1:
                cols["price"][-1] = -1.0
            elif defect == 2:
                cols["image_url"][-1] = "/img/relative.jpg"
            else:
                cols["title"][-1] = ""
    return pl.DataFrame(cols)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--bad-share", type=float, default=0.01)
    args = parser.parse_args()
    contract = load_contract()
    frame = build_frame(args.rows, args.bad_share)
    locked = {"option_color": "string", "option_size": "string[]", "weight_kg": "float"}
    best = float("inf")
    outcome = None
    for _ in range(args.repeat):
        start = time.perf_counter()
        outcome = validate_frame(frame, contract, source="bench", sync_id="bench", locked_types=locked)
        best = min(best, time.perf_counter() - start)
    if outcome is None:
        raise SystemExit("--repeat must be at least 1")
    print(f"threads={pl.thread_pool_size()} rows={frame.height} best={best:.3f}s rows/s={frame.height / best:,.0f}")
    print(f"valid={outcome.valid.height} quarantined={outcome.invalid_rows} rules={outcome.rule_counts}")


if __name__ == "__main__":
    main()
