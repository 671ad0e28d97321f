"""The all-MiniLM-L6-v2 encoder on ONNX Runtime against the reference implementation, and the
checks on text templates and search filters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from flowforge.embed.models import load_model, packaged_minilm
from flowforge.embed.text import template_fields, template_sql
from flowforge.embed.where import boolean_expression
from flowforge.errors import ConfigError
from flowforge.spec.embed import EmbedModel

REFERENCE = Path(__file__).with_name("embed_reference") / "minilm_reference.json"


def test_vectors_agree_with_sentence_transformers() -> None:
    """Cosine >= 0.999 with sentence-transformers' encode (PyTorch) on the same weights, for every
    sentence of the fixture: empty text, accents, CJK, a text past the 256-token limit."""
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))
    model = load_model(EmbedModel())
    ours = model.encode(reference["sentences"], batch_size=5)
    theirs = np.array(reference["vectors"], dtype=np.float32)
    assert ours.shape == theirs.shape == (12, 384)
    cosine = (ours * theirs).sum(axis=1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    assert cosine.min() >= 0.999, dict(zip(reference["sentences"], cosine.round(5).tolist(), strict=True))
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_batching_and_order_do_not_change_vectors() -> None:
    model = load_model(EmbedModel())
    texts = ["short", "a much longer product description with many more words in it", "mid length text"]
    one_by_one = np.vstack([model.encode([t]) for t in texts])
    assert np.allclose(model.encode(texts, batch_size=2), one_by_one, atol=1e-5)


def test_a_folder_without_the_model_files_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"has no config\.json, tokenizer\.json, model\.safetensors"):
        load_model(EmbedModel(name="my-model", path=str(tmp_path)))
    with pytest.raises(ConfigError, match="Unknown embedding model 'nope'"):
        load_model(EmbedModel(name="nope"))


def test_the_weights_come_from_the_installed_package() -> None:
    folder = packaged_minilm()
    assert (folder / "model.safetensors").stat().st_size > 80_000_000


@pytest.mark.parametrize(("template", "problem"), [
    ("{name", "expected '}'"), ("{}", "must name a column"), ("{price:.2f}", "has a format"),
    ("no fields", "names no column")])
def test_bad_templates_are_refused(template: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        template_fields(template)


def test_template_becomes_sql_with_nulls_as_empty_text() -> None:
    import duckdb

    sql = template_sql("{name}. {description}!", ["name", "description"])
    rows = duckdb.sql(f"SELECT {sql} FROM (VALUES ('Kettle', NULL), ('it''s', 'x')) t(name, description)").fetchall()
    assert rows == [("Kettle. !",), ("it's. x!",)]
    with pytest.raises(ValueError, match="names column 'colour'"):
        template_sql("{colour}", ["name"])


@pytest.mark.parametrize("text", ["category_id = 3", "price < 20 AND name ILIKE '%boot%'", "is_active",
                                  "category IN ('garden', 'office')", "NOT (price BETWEEN 1 AND 5)"])
def test_filters_that_are_one_condition_pass(text: str) -> None:
    boolean_expression(text)


@pytest.mark.parametrize(("text", "problem"), [
    ("1 = 1; DROP TABLE products", "one expression"),
    ("id IN (SELECT id FROM secrets)", "may only compare"),
    ("price + 1", "must be true or false"),
    ("'a'", "must be true or false"),
    ("p.price > 1", "by name alone"),
    ("price > (", "does not parse"),
    ("", "empty")])
def test_filters_that_are_not_one_condition_are_refused(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        boolean_expression(text)
