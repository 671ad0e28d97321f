"""The job editor round-trips every job of every template: opened and saved unchanged through the
code the page runs (``workflow_services.job_source`` → ``JobDraft`` → ``services.save_job``, and the
YAML tab's text), the workflow file is the same, byte for byte, comments included; and a change in
the form changes only what it says."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from flowforge.core.context import Context
from flowforge.core.project import init_project
from flowforge.settings import Settings
from flowforge.templates.registry import list_templates
from flowforge.ui import services, workflow_services
from flowforge.ui.job_draft import JobDraft

TEMPLATES = [t.name for t in list_templates()]


@pytest.fixture
def editor_user(tmp_path: Path) -> Iterator[tuple[Context, services.UiUser]]:
    project = tmp_path / "project"
    init_project(project)
    settings = Settings.load(project)
    ctx = Context(settings.model_copy(update={"actor": "test-setup"}))
    ctx.users.create_user("edna", "edna-Pass-0001", "editor")
    services.configure(ctx.settings)
    record = ctx.users.get("edna")
    session = ctx.users.issue_session(record)
    yield ctx, services.UiUser("edna", "editor", record, session)
    ctx.close()


def _commented(text: str) -> str:
    """The template's YAML with a comment above every job and after every table line."""
    text = re.sub(r"(?m)^  - name: (\w+)$", r"  # why \1 exists\n  - name: \1", text)
    return re.sub(r"(?m)^(      - \{.*\})$", r"\1  # one table", text)


def _spec(path: Path) -> object:
    from flowforge.spec import parse_workflow

    return parse_workflow(path.read_text(encoding="utf-8"), str(path)).model_dump(mode="json")


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_job_opens_and_saves_unchanged(editor_user: tuple[Context, services.UiUser], template: str) -> None:
    ctx, user = editor_user
    path = ctx.instantiate_template(template)
    path.write_text(_commented(path.read_text(encoding="utf-8")), encoding="utf-8")
    name = path.stem
    original = path.read_text(encoding="utf-8")
    spec_before = _spec(path)
    jobs = [j["name"] for j in yaml.safe_load(original)["jobs"]]
    assert jobs
    for job in jobs:
        source = workflow_services.job_source(user, name, job)
        if source.kind == "ingest":  # the form
            draft = JobDraft(source.data)
            for i in range(len(draft.tables)):  # the user looks at every table
                draft.select(i)
            for saved in draft.jobs(str(source.data["connection"])):
                services.save_job(user, name, saved, source.name)
        services.save_job(user, name, source.text, source.name)  # the YAML tab
        assert path.read_text(encoding="utf-8") == original, f"saving {job} unchanged changed the file"
    assert _spec(path) == spec_before


def test_the_demo_ingest_job_keeps_every_table_and_field(editor_user: tuple[Context, services.UiUser]) -> None:
    ctx, user = editor_user
    path = ctx.instantiate_template("bfsi_customer_360")
    source = workflow_services.job_source(user, "bfsi_customer_360", "ingest_core_banking")
    draft = JobDraft(source.data)
    assert [r["target"] for r in draft.table_rows()] == [
        "bronze_core_customers", "bronze_core_accounts", "bronze_core_transactions"]
    draft.select(1)
    draft.v["lookback"] = "2h"
    draft.v["description"] = "Core banking, with a late-row window on accounts"
    [job] = draft.jobs("core_banking")
    services.save_job(user, "bfsi_customer_360", job, "ingest_core_banking")
    saved = yaml.safe_load(path.read_text(encoding="utf-8"))["jobs"][0]
    assert saved["description"] == "Core banking, with a late-row window on accounts"
    assert [t["target"] for t in saved["tables"]] == [
        "bronze_core_customers", "bronze_core_accounts", "bronze_core_transactions"]
    assert saved["tables"][0] == {"table": "customers", "target": "bronze_core_customers",
                                  "incremental": "modified_date"}
    assert saved["tables"][1]["incremental"] == {"column": "modified_date", "lookback": "2h"}
    assert saved["tables"][2]["incremental"] == "modified_date"


def test_tables_added_and_removed_in_the_form(editor_user: tuple[Context, services.UiUser]) -> None:
    ctx, user = editor_user
    path = ctx.instantiate_template("bfsi_customer_360")
    source = workflow_services.job_source(user, "bfsi_customer_360", "ingest_core_banking")
    draft = JobDraft(source.data)
    draft.select(2)
    draft.remove_table()
    draft.add_table()
    draft.v.update(table="branches", target="", incremental=False)
    [job] = draft.jobs("core_banking")
    services.save_job(user, "bfsi_customer_360", job, "ingest_core_banking")
    saved = yaml.safe_load(path.read_text(encoding="utf-8"))["jobs"][0]["tables"]
    assert [t["target"] for t in saved] == ["bronze_core_customers", "bronze_core_accounts", "bronze_branches"]
    assert saved[2] == {"table": "branches", "target": "bronze_branches"}


def test_yaml_tab_keeps_the_comments_the_user_writes(editor_user: tuple[Context, services.UiUser]) -> None:
    ctx, user = editor_user
    path = ctx.instantiate_template("bfsi_customer_360")
    source = workflow_services.job_source(user, "bfsi_customer_360", "ingest_crm")
    text = source.text.replace("kind: ingest", "kind: ingest  # files, not a database")
    services.save_job(user, "bfsi_customer_360", text, "ingest_crm")
    assert "kind: ingest  # files, not a database" in path.read_text(encoding="utf-8")
    again = workflow_services.job_source(user, "bfsi_customer_360", "ingest_crm")
    assert "# files, not a database" in again.text


def test_hostile_yaml_and_names_change_nothing(editor_user: tuple[Context, services.UiUser], tmp_path: Path) -> None:
    from flowforge.errors import FlowForgeError

    ctx, user = editor_user
    path = ctx.instantiate_template("bfsi_customer_360")
    before = path.read_text(encoding="utf-8")
    marker = tmp_path / "pwned"
    hostile = [
        f"name: ingest_crm\nkind: ingest\nconnection: !!python/object/apply:os.system ['touch {marker}']\n"
        "tables:\n  - {files: a.csv, target: bronze_crm_customers}\n",
        "name: ingest_crm\nkind: ingest\nconnection: crm_files\ntables: &a [*a]\n",
        "name: ../../etc/passwd\nkind: gold\ntables:\n  - {target: gold_x, sql: SELECT 1 AS x}\n",
        "- not\n- a mapping\n",
        "name: ingest_crm\nkind: ingest\nconnection: crm_files\nparams:\n  l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 8))
        + "tables: *l7\n",  # aliases that multiply to ten million values
    ]
    for text in hostile:
        with pytest.raises(FlowForgeError):
            services.save_job(user, "bfsi_customer_360", text, "ingest_crm")
        assert path.read_text(encoding="utf-8") == before
    assert not marker.exists()
    for bad in ("../escape", "x/../../y", "with space", ""):
        with pytest.raises(FlowForgeError):
            workflow_services.create_blank(user, bad, "", "", "dev", [])
        with pytest.raises(FlowForgeError):
            workflow_services.set_details(user, "bfsi_customer_360", new_name=bad or "1x", description="",
                                          team="", environment="", tags=[])
    assert sorted(p.name for p in path.parent.iterdir()) == ["bfsi_customer_360.yml", "example.yml"]
    viewer = ctx.users.create_user("vic", "vic-Pass-00001", "viewer")
    seen = services.UiUser("vic", "viewer", viewer, ctx.users.issue_session(viewer))
    with pytest.raises(FlowForgeError):
        workflow_services.set_details(seen, "bfsi_customer_360", new_name="", description="mine", team="",
                                      environment="", tags=[])
    with pytest.raises(FlowForgeError):
        workflow_services.create_blank(seen, "viewer_made", "", "", "dev", [])
    assert workflow_services.job_source(seen, "bfsi_customer_360", "ingest_crm").kind == "ingest"
    assert path.read_text(encoding="utf-8") == before


def test_a_spec_saved_as_data_keeps_the_files_comments(editor_user: tuple[Context, services.UiUser]) -> None:
    """The schedule editor saves triggers as data (``workflows.update`` with a mapping)."""
    ctx, _ = editor_user
    path = ctx.instantiate_template("bfsi_customer_360")
    path.write_text("# owned by the analytics team\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    ctx.workflows.update("bfsi_customer_360", {**spec, "triggers": [{"cron": "0 6 * * *"}]})
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# owned by the analytics team\n")
    assert yaml.safe_load(text)["triggers"] == [{"cron": "0 6 * * *"}]
    assert "      - {table: customers, target: bronze_core_customers, incremental: modified_date}\n" in text
