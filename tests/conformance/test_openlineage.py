"""Column lineage and OpenLineage events, as a user and a lineage server see them.

The BFSI demo and the product catalog CDC template run for real; every event FlowForge emits is
validated against the OpenLineage spec in ``../shared/conformance/openlineage`` (offline: every
``$id`` of the spec and its facets is in a local registry) and each facet against its own schema.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.cli_helpers import invoke

from flowforge.core.context import Context
from flowforge.core.project import init_project, setup_demo_project, write_project_file
from flowforge.lineage import openlineage

FIGURES: Counter[str] = Counter()  # events and facets validated, printed at the end of the module


# -- the spec, offline ---------------------------------------------------------------------------
class Spec:
    def __init__(self, root: Path) -> None:
        from jsonschema import Draft202012Validator
        from referencing import Registry, Resource

        files = [root / "OpenLineage.json", *sorted((root / "facets").glob("*.json"))]
        self.docs = {d["$id"]: d for d in (json.loads(p.read_text()) for p in files)}
        self.registry = Registry().with_resources(
            (i, Resource.from_contents(d)) for i, d in self.docs.items())
        event = {"$ref": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"}
        checker = Draft202012Validator.FORMAT_CHECKER
        self.event = Draft202012Validator(event, registry=self.registry, format_checker=checker)
        self.facets = {i: Draft202012Validator(d, registry=self.registry, format_checker=checker)
                       for i, d in self.docs.items() if "facets/" in i}

    def validate(self, event: dict[str, Any]) -> None:
        errors = sorted(self.event.iter_errors(event), key=lambda e: list(e.path))
        assert not errors, f"{errors[0].json_path}: {errors[0].message}"
        FIGURES[f"event {event['eventType']}"] += 1
        for where, key, value in _facets(event):
            url = value["_schemaURL"].split("#")[0]
            assert url in self.facets, f"{where}.{key}: {url} is not a facet of the spec"
            errors = list(self.facets[url].iter_errors({key: value}))
            assert not errors, f"{where}.{key}: {errors[0].json_path}: {errors[0].message}"
            FIGURES[f"facet {key}"] += 1


def _facets(event: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    yield from (("run", k, v) for k, v in event["run"].get("facets", {}).items())
    yield from (("job", k, v) for k, v in event["job"].get("facets", {}).items())
    for side in ("inputs", "outputs"):
        for d in event.get(side, []):
            for group in ("facets", "inputFacets", "outputFacets"):
                yield from ((f"{side}[{d['name']}]", k, v) for k, v in d.get(group, {}).items())


@pytest.fixture(scope="module")
def spec(conformance_dir: Path) -> Iterator[Spec]:
    yield Spec(conformance_dir / "openlineage" / "spec")
    print("\nOpenLineage conformance:", ", ".join(f"{k}: {n}" for k, n in sorted(FIGURES.items())))


def _events(path: Path) -> list[dict[str, Any]]:
    assert openlineage.flush(30), "events still being sent after 30 s"  # they go out in the background
    return [json.loads(line) for line in path.read_text().splitlines()]


def _openlineage(project: Path, settings: dict[str, Any]) -> None:
    text = (project / "flowforge.yml").read_text()
    (project / "flowforge.yml").write_text(text + "\n" + yaml.safe_dump({"openlineage": settings}))


# -- the BFSI demo -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ol") / "demo"
    setup_demo_project(root, scale=0.1, seed=42)
    _openlineage(root, {"transport": "file", "path": ".flowforge/openlineage.jsonl", "namespace": "bfsi"})
    with Context.open(root) as ctx:
        assert ctx.run("bfsi_customer_360").status == "success"
    return root


# gold_customer_360, column by column: (input column, how) per output column
CUSTOMER_360 = {
    **{c: {("silver_customer_master", c, "IDENTITY")} for c in (
        "customer_id", "customer_sk", "full_name", "email", "customer_segment", "city", "state", "credit_score",
        "annual_income", "customer_tenure_days")},
    "account_count": set(),  # count(*): no column, only the grouping (INDIRECT)
    "active_account_count": {("silver_accounts", "status", "AGGREGATION")},
    "total_balance": {("silver_accounts", "balance", "AGGREGATION")},
    "transaction_count": {("silver_transactions", "transaction_id", "AGGREGATION")},
    "total_transaction_amount": {("silver_transactions", "amount", "AGGREGATION")},
    "last_transaction_date": {("silver_transactions", "transaction_date", "AGGREGATION")},
    **{c: {("silver_crm_customers", c, "IDENTITY")} for c in (
        "crm_id", "preferred_contact_method", "marketing_opt_in", "loyalty_tier", "lifetime_value",
        "last_contact_date", "assigned_rep")},
}


def test_customer_360_column_lineage_column_by_column(demo: Path) -> None:
    with Context.open(demo) as ctx:
        edges = [e for e in ctx.column_lineage.edges("bfsi_customer_360")
                 if e.target.table == "gold_customer_360" and e.type == "DIRECT"]
        got: dict[str, set[tuple[str, str, str]]] = {c: set() for c in CUSTOMER_360}
        for e in edges:
            got[e.target.column].add((e.source.table, e.source.column, e.subtype))
        assert got == CUSTOMER_360
        indirect = {(e.source.table, e.source.column, e.subtype) for e in ctx.column_lineage.edges()
                    if e.target.table == "gold_customer_360" and e.type == "INDIRECT"}
        assert {("silver_accounts", "customer_id", "GROUP_BY"), ("silver_accounts", "account_id", "JOIN"),
                ("silver_customer_master", "customer_id", "JOIN")} <= indirect


def test_total_balance_traces_back_to_the_core_banking_balance(demo: Path) -> None:
    with Context.open(demo) as ctx:
        found = ctx.column_lineage.columns("customer_360", "total_balance")
    assert (found["table"], found["column"], found["workflow"]) == ("gold_customer_360", "total_balance",
                                                                  "bfsi_customer_360")
    assert [(h["depth"], h["table"], h["column"], h["kind"], h["subtype"]) for h in found["upstream"]] == [
        (1, "silver_accounts", "balance", "table", "AGGREGATION"),
        (2, "bronze_core_accounts", "balance", "table", "IDENTITY"),
        (3, "core_banking.accounts", "balance", "source", "IDENTITY"),
    ]
    assert found["downstream"] == []
    code, out = invoke(demo, "lineage", "core_banking.accounts.balance")
    assert code == 0, out
    lines = [line.strip() for line in out.splitlines()]
    assert "→ bronze_core_accounts.balance  [IDENTITY]  (ingest_core_banking)" in lines
    assert any(line.startswith("→ gold_customer_360.total_balance  [AGGREGATION") for line in lines)
    code, out = invoke(demo, "lineage", "silver_customer_master.full_name")
    assert code == 0 and "← core_banking.customers.first_name" in out and "← bronze_core_customers.last_name" in out
    code, out = invoke(demo, "lineage", "gold_customer_360.total_balance", "--json", "--indirect")
    assert code == 0, out
    data = json.loads(out)
    assert [h["column"] for h in data["upstream"]] == ["balance"] * 3
    assert ("silver_accounts", "customer_id", "GROUP_BY") in {
        (e["source"]["table"], e["source"]["column"], e["subtype"]) for e in data["indirect"]}
    code, out = invoke(demo, "lineage", "gold_customer_360.balance")
    assert code == 1 and "has no column 'balance'" in out and "total_balance" in out
    code, out = invoke(demo, "lineage", "customer.total_balance")
    assert code == 1 and "No table 'customer'" in out


def test_silver_casts_derived_columns_and_keys(demo: Path) -> None:
    with Context.open(demo) as ctx:
        edges = ctx.column_lineage.edges("bfsi_customer_360")
    into = {(e.source.column, e.subtype, e.type) for e in edges if e.target.table == "silver_customer_master"
            and e.target.column in ("full_name", "customer_tenure_days", "customer_sk", "*")}
    assert {("first_name", "TRANSFORMATION", "DIRECT"), ("last_name", "TRANSFORMATION", "DIRECT"),
            ("account_open_date", "TRANSFORMATION", "DIRECT"), ("customer_id", "TRANSFORMATION", "DIRECT"),
            ("customer_id", "GROUP_BY", "INDIRECT"), ("modified_date", "SORT", "INDIRECT")} == into
    bronze = {(e.source.table, e.source.column) for e in edges if e.target.table == "bronze_crm_customers"}
    assert ("source:crm_files.crm_customers.csv", "lifetime_value") in bronze
    assert not any(e.target.column.startswith("_") for e in edges if e.target.table.startswith("bronze_"))


def test_demo_events_are_valid_openlineage(demo: Path, spec: Spec) -> None:
    events = _events(demo / ".flowforge" / "openlineage.jsonl")
    for event in events:
        spec.validate(event)
    assert Counter(e["eventType"] for e in events) == {"START": 4, "COMPLETE": 4}
    gold = next(e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"].endswith("customer_360"))
    assert gold["job"]["namespace"] == "bfsi"
    assert gold["run"]["facets"]["parent"]["job"] == {"namespace": "bfsi", "name": "bfsi_customer_360"}
    start = next(e for e in events if e["eventType"] == "START" and e["job"]["name"] == gold["job"]["name"])
    assert start["run"]["runId"] == gold["run"]["runId"]
    out = gold["outputs"][0]
    lake = str((demo / "lakehouse").resolve())
    assert (out["namespace"], out["name"]) == ("file", f"{lake}/gold/gold_customer_360")
    balance = out["facets"]["columnLineage"]["fields"]["total_balance"]["inputFields"]
    assert [(f["namespace"], f["name"], f["field"], f["transformations"][0]["subtype"]) for f in balance] == [
        ("file", f"{lake}/silver/silver_accounts", "balance", "AGGREGATION")]
    assert {a["assertion"] for a in out["facets"]["dataQualityAssertions"]["assertions"]} == {
        "not_null", "unique", "row_count"}
    assert [f["name"] for f in out["facets"]["schema"]["fields"]][:2] == ["customer_id", "customer_sk"]
    assert out["outputFacets"]["outputStatistics"]["rowCount"] == 50
    assert "sum(balance)" in gold["job"]["facets"]["sql"]["query"]
    ingest = next(e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"].endswith("core_banking"))
    source = next(i for i in ingest["inputs"] if i["name"].endswith(".accounts"))
    db = str((demo / "data" / "bfsi.db").resolve())
    assert (source["namespace"], source["name"]) == ("sqlite", f"{db}.accounts")
    assert "balance" in [f["name"] for f in source["facets"]["schema"]["fields"]]
    bronze = next(o for o in ingest["outputs"] if o["name"].endswith("bronze_core_accounts"))
    assert bronze["facets"]["columnLineage"]["fields"]["balance"]["inputFields"][0] | {"transformations": []} == {
        "namespace": "sqlite", "name": f"{db}.accounts", "field": "balance", "transformations": []}
    crm = next(e for e in events if e["eventType"] == "START" and e["job"]["name"].endswith("ingest_crm"))
    assert (crm["inputs"][0]["namespace"], crm["inputs"][0]["name"]) == (
        "file", str((demo / "data" / "crm" / "crm_customers.csv").resolve()))


def test_a_failing_job_sends_fail_with_its_error(demo: Path, spec: Spec, tmp_path: Path) -> None:
    events_file = demo / ".flowforge" / "openlineage.jsonl"
    before = len(_events(events_file))
    wf = demo / "workflows" / "broken.yml"
    wf.write_text(yaml.safe_dump({"name": "broken", "jobs": [{
        "name": "bad_gold", "kind": "gold", "tables": [{"target": "gold_broken", "sql":
                                                        "SELECT customer_id, no_such_column FROM silver_accounts"}]}]}))
    with Context.open(demo) as ctx:
        assert ctx.run("broken").status == "failed"
    new = _events(events_file)[before:]
    for event in new:
        spec.validate(event)
    assert [e["eventType"] for e in new] == ["START", "FAIL"]
    error = new[1]["run"]["facets"]["errorMessage"]
    assert "no_such_column" in error["message"] and error["programmingLanguage"] == "python"
    assert new[1]["job"]["name"] == "broken.bad_gold"
    wf.unlink()


# -- the product catalog CDC template ------------------------------------------------------------
@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from flowforge.connectors.cdc.debezium.synthetic import ProductStream

    root = tmp_path_factory.mktemp("ol") / "shop"
    init_project(root)
    (root / "workflows" / "example.yml").unlink()
    (root / "events").mkdir()
    write_project_file(root, {"product_events": {"type": "debezium", "path": "events"}}, data_roots=["events"])
    _openlineage(root, {"transport": "file", "path": "ol/events.jsonl"})
    ProductStream(keys=20, seed=5).write(root / "events" / "batch=20250101T000001Z.jsonl", 60)
    with Context.open(root) as ctx:
        ctx.instantiate_template("product_catalog_cdc", {"key": "id"})
        assert ctx.run("product_catalog_cdc").status == "success"
    return root


def test_product_catalog_cdc_column_lineage(catalog: Path, spec: Spec) -> None:
    with Context.open(catalog) as ctx:
        found = ctx.column_lineage.columns("gold_product_catalog", "price")
        gold = ctx.column_lineage.columns("gold_product_catalog")
        ts = ctx.column_lineage.columns("gold_product_catalog", "source_timestamp")
    assert [(h["table"], h["column"]) for h in found["upstream"]] == [
        ("silver_product", "price"), ("bronze_product_cdc", "_after.price"),
        ("product_events.batch=*.jsonl", "after.price")]
    assert [(h["table"], h["column"]) for h in ts["upstream"]] == [
        ("silver_product", "_source_ts"), ("bronze_product_cdc", "_source_ts"),
        ("product_events.batch=*.jsonl", "source.ts_ms")]
    assert set(gold["columns"]) == {"id", "name", "price", "qty", "description", "source_timestamp"}
    into_gold = {(e["source"]["column"], e["target"]["column"]) for e in gold["edges"] if e["type"] == "DIRECT"}
    assert into_gold == {("id", "id"), ("name", "name"), ("price", "price"), ("qty", "qty"),
                         ("description", "description"), ("_source_ts", "source_timestamp")}
    assert ("_is_deleted", "*") in {(e["source"]["column"], e["target"]["column"]) for e in gold["edges"]}
    events = _events(catalog / "ol" / "events.jsonl")
    for event in events:
        spec.validate(event)
    cdc = next(e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"].endswith("product_cdc"))
    history = next(o for o in cdc["outputs"] if o["name"].endswith("silver_product_history"))
    assert history["facets"]["columnLineage"]["fields"]["name"]["inputFields"][0]["field"] == "_after.name"
    assert cdc["inputs"][0]["namespace"] == "file"
    assert cdc["inputs"][0]["name"] == str((catalog / "events").resolve()) + "/batch=*.jsonl"


# -- transports ----------------------------------------------------------------------------------
class _Recorder(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, str], dict[str, Any]]] = []
    status = 201
    gate: threading.Event | None = None

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if type(self).gate is not None:
            type(self).gate.wait(60)
        type(self).received.append((self.path, dict(self.headers), json.loads(body)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def marquez() -> Iterator[tuple[str, type[_Recorder]]]:
    handler = type("Recorder", (_Recorder,), {"received": [], "status": 201, "gate": None})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_http_transport_posts_every_event_to_a_marquez_endpoint(demo: Path, spec: Spec, marquez: Any,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    url, recorder = marquez
    env = {"FLOWFORGE_OPENLINEAGE__TRANSPORT": "http", "FLOWFORGE_OPENLINEAGE__URL": url,
           "FLOWFORGE_OPENLINEAGE__API_KEY": "s3cr3t-key-123"}
    with pytest.MonkeyPatch.context() as mp, caplog.at_level(logging.DEBUG):
        for k, v in env.items():
            mp.setenv(k, v)
        with Context.open(demo) as ctx:
            assert ctx.settings.openlineage.transport == "http"
            assert "s3cr3t" not in repr(ctx.settings.openlineage)
            assert ctx.run("bfsi_customer_360", select=["build_gold_customer_360"]).status == "success"
        assert openlineage.flush(10)
    assert [(p, b["eventType"], b["job"]["name"]) for p, _, b in recorder.received] == [
        ("/api/v1/lineage", "START", "bfsi_customer_360.build_gold_customer_360"),
        ("/api/v1/lineage", "COMPLETE", "bfsi_customer_360.build_gold_customer_360")]
    for _, headers, body in recorder.received:
        assert headers["Authorization"] == "Bearer s3cr3t-key-123"
        assert headers["Content-Type"] == "application/json"
        spec.validate(body)
    assert "s3cr3t" not in caplog.text


def test_an_unreachable_or_refusing_server_never_fails_the_run(demo: Path, marquez: Any,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    url, recorder = marquez
    recorder.status = 500
    for target in (url, "http://127.0.0.1:9"):  # a server that answers 500, and a closed port
        with pytest.MonkeyPatch.context() as mp, caplog.at_level(logging.WARNING):
            mp.setenv("FLOWFORGE_OPENLINEAGE__TRANSPORT", "http")
            mp.setenv("FLOWFORGE_OPENLINEAGE__URL", target)
            mp.setenv("FLOWFORGE_OPENLINEAGE__API_KEY", "never-logged-key")
            mp.setenv("FLOWFORGE_OPENLINEAGE__TIMEOUT", "0.5")
            with Context.open(demo) as ctx:
                assert ctx.run("bfsi_customer_360", select=["build_gold_customer_360"]).status == "success"
            assert openlineage.flush(10)
    assert len(recorder.received) == 2
    assert "could not send a START event" in caplog.text and "never-logged-key" not in caplog.text


def test_a_run_never_waits_for_the_lineage_server(demo: Path, marquez: Any) -> None:
    url, recorder = marquez
    release = threading.Event()
    recorder.gate = release  # the server holds every request until the test releases it
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FLOWFORGE_OPENLINEAGE__TRANSPORT", "http")
        mp.setenv("FLOWFORGE_OPENLINEAGE__URL", url)
        mp.setenv("FLOWFORGE_OPENLINEAGE__TIMEOUT", "60")
        with Context.open(demo) as ctx:
            assert ctx.run("bfsi_customer_360", select=["build_gold_customer_360"]).status == "success"
        assert openlineage.OUTBOX.queue.unfinished_tasks > 0 and recorder.received == []  # still held
        release.set()
        assert openlineage.flush(30)
    assert [b["eventType"] for _, _, b in recorder.received] == ["START", "COMPLETE"]


def test_settings_refuse_an_http_transport_without_url(tmp_path: Path) -> None:
    from flowforge.errors import ConfigError
    from flowforge.settings import Settings

    root = tmp_path / "p"
    init_project(root)
    _openlineage(root, {"transport": "http"})
    with pytest.raises(ConfigError, match="transport 'http' needs 'url'"):
        Settings.load(root)
    (root / "flowforge.yml").write_text("openlineage: {transport: http, url: 'http://u:pw@host:5000'}\n")
    with pytest.raises(ConfigError, match="api_key") as err:
        Settings.load(root)
    assert "pw@" not in str(err.value)


def test_the_validator_refuses_what_the_spec_refuses(demo: Path, spec: Spec) -> None:
    event = next(e for e in _events(demo / ".flowforge" / "openlineage.jsonl")
                 if e["eventType"] == "COMPLETE" and e["job"]["name"].endswith("customer_360"))
    for broken, why in (({**event, "eventType": "DONE"}, "is not one of"),
                        ({**event, "run": {"runId": "run-1"}}, "is not a 'uuid'"),
                        ({**event, "job": {"name": "x"}}, "'namespace' is a required property")):
        with pytest.raises(AssertionError, match=why):
            spec.validate(broken)
    lineage = json.loads(json.dumps(event))
    lineage["outputs"][0]["facets"]["columnLineage"]["fields"]["total_balance"]["inputFields"][0].pop("field")
    with pytest.raises(AssertionError, match="'field' is a required property"):
        spec.validate(lineage)


def test_a_cancelled_or_interrupted_job_sends_abort(demo: Path, spec: Spec) -> None:
    from flowforge.lineage.openlineage import JobLineage
    from flowforge.runner.executor import MetadataMirror
    from flowforge.runner.jobs import JobEnv, JobEvent
    from flowforge.spec.workflow import Workflow

    sent: list[dict[str, Any]] = []
    with Context.open(demo) as ctx:
        wf = Workflow.model_validate(ctx.metadata.get_workflow("bfsi_customer_360").spec)
        env = JobEnv(ctx.metadata, ctx.store, ctx.connector, MetadataMirror(ctx.metadata, ctx.store, wf.name, 1),
                     settings=ctx.settings)
        lineage = JobLineage(env, wf, wf.job("ingest_core_banking"), 1, ctx.settings.openlineage, sent.append)
        lineage.finish(JobEvent("ingest_core_banking", "ingest", "cancelled", 1, 4, error="run cancelled"))
        lineage.interrupted(KeyboardInterrupt())
        assert openlineage.flush(30)
    assert [(e["eventType"], e["run"]["facets"]["errorMessage"]["message"]) for e in sent] == [
        ("ABORT", "run cancelled"), ("ABORT", "interrupted (KeyboardInterrupt)")]
    for event in sent:
        spec.validate(event)
