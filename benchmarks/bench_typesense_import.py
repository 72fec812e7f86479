"""Bare JSONL import throughput into a fresh Typesense collection.

Generates N realistic product documents (~1.2 KB, 15 fields), imports them in requests of
``--batch`` lines through ``TypesenseClient.import_jsonl`` and prints docs/s.

Uses ``TYPESENSE_URL`` / ``TYPESENSE_API_KEY`` when set, else starts a throwaway embedded server in a
temporary state dir (stopped at the end).

    .venv/bin/python benchmarks/bench_typesense_import.py --docs 20000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from aac_etl.lib.typesense_client import TypesenseClient
from aac_etl.lib.typesense_server import ensure_local_server, stop_local_server

_WORD_TEXT = """
steel oak linen cotton wool leather ceramic glass
walnut bamboo copper brass matte glossy compact portable
wireless ergonomic waterproof premium classic modern vintage rustic
minimal foldable adjustable rechargeable lightweight durable handmade organic
recycled insulated reinforced slim chair lamp table kettle
backpack jacket speaker blender monitor keyboard shelf rug
mug bottle tent
"""
WORDS = tuple(_WORD_TEXT.split())
BRANDS = ("Nordhaus", "Kestrel", "Alder & Co", "Brightline", "Umbra Works", "Pellucid", "Tamarack", "Vireo")
CATEGORIES = (
    ("Home", "Furniture", "Chairs"),
    ("Home", "Kitchen", "Appliances"),
    ("Outdoor", "Camping", "Tents"),
    ("Electronics", "Audio", "Speakers"),
    ("Electronics", "Computers", "Keyboards"),
    ("Fashion", "Outerwear", "Jackets"),
)
LOCALES = ("en", "de", "es", "fr", "ru")
AVAILABILITY = ("in_stock", "out_of_stock", "preorder")

SCHEMA_FIELDS: list[dict[str, Any]] = [
    {"name": "title", "type": "string"},
    {"name": "description", "type": "string", "optional": True},
    {"name": "sku", "type": "string", "optional": True},
    {"name": "brand", "type": "string", "facet": True, "optional": True},
    {"name": "categories", "type": "string[]", "facet": True, "optional": True},
    {"name": "category_ids", "type": "string[]", "facet": True, "optional": True},
    {"name": "tags", "type": "string[]", "facet": True, "optional": True},
    {"name": "price", "type": "float", "facet": True, "sort": True, "optional": True},
    {"name": "sale_price", "type": "float", "sort": True, "optional": True},
    {"name": "currency", "type": "string", "facet": True, "optional": True},
    {"name": "image_url", "type": "string", "index": False, "optional": True},
    {"name": "product_url", "type": "string", "index": False, "optional": True},
    {"name": "availability", "type": "string", "facet": True, "optional": True},
    {"name": "stock_quantity", "type": "int64", "sort": True, "optional": True},
    {"name": "locale", "type": "string", "facet": True, "optional": True},
]


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def make_document(rng: random.Random, index: int) -> dict[str, Any]:
    path = rng.choice(CATEGORIES)
    price = round(rng.uniform(5, 900), 2)
    locale = LOCALES[index % len(LOCALES)]
    pk = index // len(LOCALES) + 1
    return {
        "id": f"{pk}:{locale}",
        "title": sentence(rng, 5).title(),
        "description": ". ".join(sentence(rng, 14).capitalize() for _ in range(6)) + ".",
        "sku": f"SKU-{pk:07d}",
        "brand": rng.choice(BRANDS),
        "categories": list(path),
        "category_ids": [str(abs(hash(name)) % 1000) for name in path],
        "tags": rng.sample(WORDS, 4),
        "price": price,
        "sale_price": round(price * 0.8, 2),
        "currency": "EUR",
        "image_url": f"https://cdn.example.com/images/catalog/{pk}/main-{uuid.UUID(int=rng.getrandbits(128))}.jpg",
        "product_url": f"https://shop.example.com/{locale}/product/{pk}-{'-'.join(rng.sample(WORDS, 3))}",
        "availability": rng.choice(AVAILABILITY),
        "stock_quantity": rng.randint(0, 500),
        "locale": locale,
    }


def run(client: TypesenseClient, docs: int, batch: int) -> None:
    rng = random.Random(42)  # noqa: S311 - synthetic data, not security
    lines = [json.dumps(make_document(rng, i), ensure_ascii=False, separators=(",", ":")) for i in range(docs)]
    avg_bytes = sum(len(line.encode()) for line in lines) / len(lines)
    name = f"bench_{uuid.uuid4().hex[:8]}"
    client.create_collection({"name": name, "fields": SCHEMA_FIELDS})
    try:
        failed = 0
        started = time.perf_counter()
        for start in range(0, len(lines), batch):
            chunk = lines[start : start + batch]
            results = client.import_jsonl(name, chunk, action="upsert", batch_size=batch)
            failed += sum(not r.success for r in results)
        elapsed = time.perf_counter() - started
        count = client.count(name)
        print(
            f"{docs} docs ({avg_bytes:.0f} B avg, 15 fields) in {elapsed:.2f}s: "
            f"{docs / elapsed:,.0f} docs/s, {failed} failed, {count} in collection"
        )
    finally:
        client.delete_collection(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    with ExitStack() as stack:
        url = os.environ.get("TYPESENSE_URL")
        if url:
            api_key = os.environ.get("TYPESENSE_API_KEY", "")
        else:
            state = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_typesense_")))
            server = ensure_local_server(state)
            stack.callback(stop_local_server, state)
            url, api_key = server.url, server.api_key.get_secret_value()
        client = stack.enter_context(TypesenseClient(url, api_key, timeout=120.0))
        for _ in range(args.repeat):
            run(client, args.docs, args.batch)


if __name__ == "__main__":
    main()
