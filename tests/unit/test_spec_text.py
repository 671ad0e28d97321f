"""The YAML a workflow's page shows when it has no file: written by libyaml where it can be, and always
loading back to the spec it shows."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from flowforge.core.spec_text import _Dumper, dump_yaml

pytestmark = pytest.mark.skipif(not hasattr(yaml, "CSafeDumper"), reason="PyYAML was built without libyaml")

ODD = " \n\t\r-:#'\"|>{}[],&*!%@`?\\\x00\x7f\x85\xa0\u2028\u2029\ufeff"
_PLAIN = re.compile("[^\\n\\x20-\\x7e\\xa0-\\u2027\\u202a-\\ud7ff\\ue000-\\ufefe\\uff00-\\ufffd]")

any_text = st.text(st.characters(max_codepoint=0xFFFF, blacklist_categories=("Cs",)) | st.sampled_from(ODD),
                   max_size=60)
LETTERS = "\n\n éüß中\u2013\u2019-:#|>"  # newlines, accents, CJK, an en dash, a curly quote, YAML's marks
plain_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.sampled_from(LETTERS), max_size=60)
text = any_text | plain_text
scalar = text | st.integers() | st.floats(allow_nan=False) | st.booleans() | st.none()
tree = st.recursive(scalar, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
                    max_leaves=25)


def _pyyaml(data: dict[str, Any]) -> str:
    out: str = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return out


def _plain(value: Any) -> bool:
    if isinstance(value, str):
        return _PLAIN.search(value) is None
    if isinstance(value, dict):
        return all(k != "" and _plain(k) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return True


@settings(max_examples=800, deadline=None)
@given(st.dictionaries(text, tree, max_size=6))
def test_the_yaml_loads_back_to_the_spec_and_printable_text_reads_as_before(data: dict[str, Any]) -> None:
    out = dump_yaml(data)
    assert yaml.safe_load(out) == data
    if _plain(data):  # what PyYAML's emitter wrote before, byte for byte (but a document end marker)
        assert out in (_pyyaml(data), _pyyaml(data) + "...\n")


def test_a_spec_with_sql_and_accents_reads_as_before() -> None:
    sql = "SELECT order_date, sum(amount) AS revenue\nFROM silver_orders\nGROUP BY 1\n"
    spec = {"name": "orders", "description": "Commandes réglées \u2013 中文", "jobs": [
        {"name": "gold", "kind": "gold", "tables": [{"target": "daily", "sql": sql}]}]}
    out = dump_yaml(spec)
    assert out == _pyyaml(spec)
    assert "sql: |\n" in out and "Commandes réglées \u2013 中文" in out


def test_an_emoji_is_written_as_it_is() -> None:
    spec = {"name": "tickets", "description": "Support 🎫 queue"}
    assert dump_yaml(spec) == "name: tickets\ndescription: Support 🎫 queue\n"


def test_line_break_characters_load_back() -> None:
    """PyYAML's emitter writes NEL in a form that loads back as something else; libyaml quotes it."""
    spec = {"name": "x", "description": "Line one\x85", "owner": "a\u2028b"}
    assert yaml.safe_load(dump_yaml(spec)) == spec
