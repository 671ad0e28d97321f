"""Projects with an embedded table for the search tests, and a small labelled product set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from flowforge.core.project import write_project_file

# (id, name, description, category): written by hand for the search-quality test
PRODUCTS: list[tuple[int, str, str, str]] = [
    (1, "Trailmaster waterproof hiking boots", "Leather boots with a Gore-Tex lining for muddy mountain trails",
     "outdoor"),
    (2, "Alpine trekking shoes", "Lightweight shoes with grippy soles for long hikes", "outdoor"),
    (3, "Summit mountaineering boots", "Insulated boots for climbing in snow and ice", "outdoor"),
    (4, "Two-person camping tent", "Dome tent that keeps you dry in heavy rain", "outdoor"),
    (5, "Down sleeping bag", "Warm sleeping bag rated to minus ten degrees for winter camping", "outdoor"),
    (6, "Packable rain jacket", "Breathable waterproof shell jacket that folds into its pocket", "outdoor"),
    (7, "Electric kettle 1.7 l", "Stainless steel cordless kettle that boils water in three minutes", "kitchen"),
    (8, "Gooseneck pour-over kettle", "Kettle with temperature control for brewing tea and coffee", "kitchen"),
    (9, "Espresso machine", "Fifteen-bar pump coffee maker with a milk frother for lattes", "kitchen"),
    (10, "Burr coffee grinder", "Grinds coffee beans evenly for espresso or filter", "kitchen"),
    (11, "French press", "Glass coffee press for rich brewed coffee", "kitchen"),
    (12, "Chef's knife", "Eight-inch forged steel knife for slicing and dicing vegetables", "kitchen"),
    (13, "Cast iron skillet", "Pre-seasoned frying pan for searing steak on the stove", "kitchen"),
    (14, "High-speed blender", "Blender that crushes ice and makes smoothies", "kitchen"),
    (15, "Noise-cancelling headphones", "Over-ear wireless headphones that block out airplane noise", "electronics"),
    (16, "True wireless earbuds", "Bluetooth earbuds with a charging case for music on the go", "electronics"),
    (17, "Portable bluetooth speaker", "Waterproof speaker with twelve hours of battery for the beach", "electronics"),
    (18, "Mechanical keyboard", "Keyboard with tactile switches for typing and gaming", "electronics"),
    (19, "Wireless mouse", "Ergonomic computer mouse with a silent click", "electronics"),
    (20, "4K webcam", "Camera for video calls with autofocus and a privacy shutter", "electronics"),
    (21, "USB-C fast charger", "65 watt wall charger for laptops and phones", "electronics"),
    (22, "Power bank 20000 mAh", "Portable battery that charges a phone five times", "electronics"),
    (23, "Ergonomic office chair", "Desk chair with lumbar support and adjustable armrests for back pain", "office"),
    (24, "Standing desk", "Electric height-adjustable desk to work sitting or standing", "office"),
    (25, "LED desk lamp", "Dimmable reading lamp with a USB port", "office"),
    (26, "Monitor arm", "Gas spring arm that holds a screen at eye level", "office"),
    (27, "Fountain pen", "Steel nib pen for smooth handwriting", "office"),
    (28, "Hardcover notebook", "Dotted paper journal for notes and sketches", "office"),
    (29, "Organic cotton t-shirt", "Soft crew neck tee in navy blue", "apparel"),
    (30, "Merino wool sweater", "Warm knitted jumper for cold winter days", "apparel"),
    (31, "Slim fit denim jeans", "Stretch jeans in dark indigo wash", "apparel"),
    (32, "Running shoes", "Cushioned sneakers for jogging and marathon training", "apparel"),
    (33, "Winter gloves", "Insulated gloves that keep hands warm in freezing weather", "apparel"),
    (34, "Wool beanie", "Knitted hat for cold weather", "apparel"),
    (35, "Garden hose 30 m", "Kink-free hose for watering plants and the lawn", "garden"),
    (36, "Pruning shears", "Sharp bypass secateurs for cutting branches and roses", "garden"),
    (37, "Cordless lawn mower", "Battery-powered mower for small lawns", "garden"),
    (38, "Watering can", "Ten-litre can with a long spout for indoor plants", "garden"),
    (39, "Compost bin", "Bin that turns kitchen scraps into garden soil", "garden"),
    (40, "Leaf blower", "Cordless blower for clearing autumn leaves", "garden"),
]
# query → relevant product ids (every product a shopper typing the query would want to see)
QUERIES: dict[str, set[int]] = {
    "waterproof boots for hiking": {1, 2, 3},
    "something to make coffee": {9, 10, 11},
    "boil water for tea": {7, 8},
    "wireless audio for listening to music": {15, 16, 17},
    "chair that helps with back pain": {23},
    "keep warm in winter": {5, 30, 33, 34},
    "tools for gardening and plants": {35, 36, 38},
    "charge my phone": {21, 22},
    "camping gear": {4, 5},
    "computer accessories for typing and clicking": {18, 19},
    "stay dry in the rain": {4, 6},
    "cut vegetables in the kitchen": {12},
}


def product_table(products: list[tuple[int, str, str, str]] | None = None) -> pa.Table:
    rows = products or PRODUCTS
    return pa.table({"id": pa.array([r[0] for r in rows], pa.int64()), "name": [r[1] for r in rows],
                     "description": [r[2] for r in rows], "category": [r[3] for r in rows],
                     "price": pa.array([10.0 + r[0] for r in rows], pa.float64())})


def embed_project(root: Path, source: str = "silver_products", connections: dict[str, Any] | None = None,
                  extra: str = "") -> Path:
    """A project whose workflow 'search' embeds ``source`` into ``product_vectors``."""
    (root / "workflows").mkdir(parents=True, exist_ok=True)
    (root / ".flowforge").mkdir(exist_ok=True)
    write_project_file(root, connections or {})
    (root / "workflows" / "search.yml").write_text(f"""
name: search
jobs:
  - name: embed_products
    kind: embed
    source: {source}
    target: product_vectors
    key: [id]
    text: "{{name}}. {{description}}"
{extra}""", encoding="utf-8")
    return root
