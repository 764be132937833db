"""What a collection run can collect from: departments and their categories.

Fixed data, seeded into the ``categories`` table when a database is created, so the
ids are stable across restarts and seeds.
"""

from __future__ import annotations

import re

__all__ = ["CATEGORIES", "DEPARTMENTS"]

DEPARTMENTS: dict[str, tuple[str, ...]] = {
    "Antiques": ("Furniture", "Silver", "Clocks", "Maps & Prints"),
    "Collectibles": ("Coins", "Stamps", "Trading Cards", "Vintage Toys"),
    "Electronics": ("Cameras", "Vintage Audio", "Phones", "Retro Computers"),
    "Fashion": ("Watches", "Handbags", "Sneakers", "Jewellery"),
    "Home & Garden": ("Kitchen", "Lighting", "Garden Tools", "Rugs"),
    "Media": ("Vinyl Records", "Books", "Comics", "Video Games"),
}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# (id, name, department), ids like "cat-antiques-furniture"
CATEGORIES: tuple[tuple[str, str, str], ...] = tuple(
    (f"cat-{_slug(dept)}-{_slug(name)}", name, dept)
    for dept, names in DEPARTMENTS.items()
    for name in names
)
