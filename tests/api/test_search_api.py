"""GET /api/v1/search for a viewer: ranked hits with source row, version, lineage and quality."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import Api, make_api
from tests.embed_helpers import product_table


@pytest.fixture(scope="module")
def search_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    project = tmp_path_factory.mktemp("search_api")
    for api in make_api(project):
        api.ctx.store.overwrite("silver", "silver_products", product_table(), {})
        (Path(project) / "workflows" / "search.yml").write_text(
            "name: search\njobs:\n  - {name: embed_products, kind: embed, source: silver_products, "
            "target: product_vectors, key: [id], text: '{name}. {description}'}\n", encoding="utf-8")
        assert api.ctx.run("search").status == "success"
        yield api


def test_a_viewer_searches_and_sees_provenance(search_api: Api) -> None:
    response = search_api.get("/search", "viewer", params={"table": "silver_products",
                                                           "q": "wireless audio for music", "k": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["table"] == "product_vectors" and body["source_table"] == "silver_products"
    assert len(body["hits"]) == 3
    top = body["hits"][0]
    assert top["key"]["id"] in {15, 16, 17} and top["row"]["category"] == "electronics"
    assert top["source_version"] == 0 and top["quality"] == "no checks"
    assert top["lineage"] == ["silver_products"]

    tables = search_api.get("/search/tables", "viewer").json()
    assert [(t["table"], t["source"], t["rows"]) for t in tables] == [("product_vectors", "silver_products", 40)]


def test_bad_filters_and_unknown_tables_are_client_errors(search_api: Api) -> None:
    bad = search_api.get("/search", "viewer", params={"table": "silver_products", "q": "boots",
                                                      "where": "1=1; DROP TABLE x"})
    assert bad.status_code == 422 and "one expression" in bad.json()["detail"]
    missing = search_api.get("/search", "viewer", params={"table": "nope", "q": "boots"})
    assert missing.status_code == 404
    assert search_api.get("/search", None, params={"table": "silver_products", "q": "boots"}).status_code == 401
    for role in ("viewer", "editor", "admin"):
        assert search_api.get("/search", role, params={"table": "product_vectors", "q": "kettle"}).status_code == 200
    search_api.assert_no_secrets()
