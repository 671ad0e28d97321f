"""Writing workflows in the web UI, as a user does it: the empty list says what to do; a blank
workflow, its details edited and renamed; its YAML edited and validated (a broken one saves
nothing); the template wizard with tags, table names and a warning for a second writer; the
demo's 3-table ingest job opened and saved without losing anything; jobs cloned and deleted;
search and filters; a run whose log lines wrap; a lineage graph with long names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import expect

from tests.e2e.browser.conftest import own_server, shot

pytestmark = [pytest.mark.browser]


# a project and server of this module's own: its first test starts from an empty workflow list
ui_project, server, admin_page = own_server("authoring")

BLANK = "scratch_pad"
RENAMED = "scratch_orders"
BANK = "bank_ui"
LONG = "gold_a_very_long_table_name_for_the_branch_network_daily_summary"
SUFFIX = "_for_the_branch_network_pilot"
HOSTILE = "Orders <img src=x onerror=window.pwned=1> by hand"  # long table names, as a big organisation writes them


def field(page: Any, testid: str) -> Any:
    """A text field by its test id (Quasar puts the attribute on the native input)."""
    return page.locator(f"input[data-testid={testid}], [data-testid={testid}] input, "
                        f"textarea[data-testid={testid}], [data-testid={testid}] textarea").first


def test_1_empty_list_then_a_blank_workflow_with_its_details(admin_page: Any, server: str,
                                                            ui_project: Path) -> None:
    page = admin_page
    page.goto(server + "/ui/workflows")
    empty = page.locator("[data-testid=workflows-empty]")
    empty.get_by_text("No workflows yet. Start from a template").wait_for()
    shot(page, "authoring_01_workflows_empty")

    empty.get_by_role("button", name="New blank workflow").click()
    field(page, "wf-name").fill(BLANK)
    field(page, "wf-description").fill("Orders by hand")
    field(page, "wf-team").fill("sales")
    field(page, "wf-environment").fill("dev")
    field(page, "wf-tags").fill("orders, draft")
    shot(page, "authoring_02_new_blank_workflow")
    page.click("[data-testid=create-blank]")
    page.wait_for_url(f"**/ui/workflows/{BLANK}")
    page.locator("[data-testid=jobs-empty]").get_by_text("This workflow has no jobs yet").wait_for()
    page.get_by_text("team: sales · environment: dev · tags: orders, draft").wait_for()
    shot(page, "authoring_03_blank_workflow")

    page.click("[data-testid=edit-details]")
    field(page, "wf-name").fill(RENAMED)
    field(page, "wf-team").fill("finance")
    field(page, "wf-environment").fill("prod")
    field(page, "wf-tags").fill("orders")
    field(page, "wf-description").fill(HOSTILE)
    shot(page, "authoring_04_edit_details")
    page.click("[data-testid=save-details]")
    page.wait_for_url(f"**/ui/workflows/{RENAMED}")
    page.get_by_text("team: finance · environment: prod · tags: orders").wait_for()
    page.get_by_text(HOSTILE, exact=True).wait_for()  # shown as the text it is
    assert page.evaluate("() => window.pwned === undefined")
    assert not (ui_project / "workflows" / f"{BLANK}.yml").exists()
    saved = yaml.safe_load((ui_project / "workflows" / f"{RENAMED}.yml").read_text())
    assert (saved["name"], saved["team"], saved["environment"], saved["tags"]) == (RENAMED, "finance", "prod",
                                                                                  ["orders"])


def test_2_workflow_yaml_is_validated_and_a_broken_one_saves_nothing(admin_page: Any, server: str,
                                                                     ui_project: Path) -> None:
    page = admin_page
    path = ui_project / "workflows" / f"{RENAMED}.yml"
    page.goto(server + f"/ui/workflows/{RENAMED}")
    page.click("[data-testid=yaml-tab]")
    editor = field(page, "workflow-yaml")
    editor.wait_for()
    before = path.read_text()
    broken = before.replace("jobs: []", "jobs:\n  - name: totals\n    kind: gold\n    tables: []")
    editor.fill(broken)
    page.click("[data-testid=save-workflow-yaml]")
    messages = page.locator("[data-testid=yaml-messages]")
    messages.get_by_text(re.compile(r"line \d+: jobs\.0\.tables: needs at least one entry")).wait_for()
    assert "Tuple should" not in messages.inner_text()
    page.get_by_text("Nothing was saved").wait_for()
    shot(page, "authoring_05_yaml_invalid")
    assert path.read_text() == before

    good = before.replace("jobs: []", f"""jobs:
  # the daily totals, from nothing yet
  - name: totals
    kind: gold
    tables:
      - target: {LONG}
        sql: SELECT 1 AS branches, 'a very long log line ' || repeat('x', 400) AS note""")
    editor.fill(good)
    page.click("[data-testid=validate-workflow-yaml]")
    messages.get_by_text("✔ The workflow is valid.").wait_for()
    page.click("[data-testid=save-workflow-yaml]")
    page.get_by_role("cell", name="totals", exact=True).wait_for()
    assert "# the daily totals, from nothing yet" in path.read_text()


def test_3_template_wizard_with_tags_table_names_and_a_second_writer_warning(admin_page: Any, server: str,
                                                                            ui_project: Path) -> None:
    page = admin_page
    page.goto(server + "/ui/templates")
    page.click("[data-testid=use-bfsi_customer_360]")
    field(page, "param-workflow_name").fill(BANK)
    field(page, "param-tags").fill("bfsi, pilot")
    page.click("[data-testid=wizard-next-1]")
    field(page, "table-gold_customer_360").wait_for()
    shot(page, "authoring_06_wizard_tables")
    page.click("[data-testid=wizard-next-2]")
    page.get_by_text("It writes 9 tables").wait_for()
    assert page.locator("[data-testid=wizard-conflicts]").count() == 0
    page.click("[data-testid=wizard-create]")
    page.wait_for_url(f"**/ui/workflows/{BANK}")
    page.get_by_text("tags: bfsi, pilot").wait_for()

    page.goto(server + "/ui/templates")
    page.click("[data-testid=use-bfsi_customer_360]")
    field(page, "param-workflow_name").fill(f"{BANK}_two")
    page.click("[data-testid=wizard-next-1]")
    page.click("[data-testid=wizard-next-2]")
    warning = page.locator("[data-testid=wizard-conflicts]")
    warning.get_by_text("9 tables already written by another workflow").wait_for()
    warning.get_by_text(f"Table 'gold_customer_360' is already written by job 'build_gold_customer_360' of "
                        f"workflow '{BANK}'").wait_for()
    shot(page, "authoring_07_wizard_second_writer_warning")
    page.get_by_role("button", name="Back").last.click()
    field(page, "table-gold_customer_360").wait_for()
    inputs = page.locator("input[data-testid^=table-], [data-testid^=table-] input")
    assert inputs.count() == 9
    for i in range(inputs.count()):
        box = inputs.nth(i)
        box.fill(box.input_value() + SUFFIX)
    page.click("[data-testid=wizard-next-2]")
    page.get_by_text(re.compile(f"gold_customer_360{SUFFIX}")).first.wait_for()
    assert page.locator("[data-testid=wizard-conflicts]").count() == 0
    page.click("[data-testid=wizard-create]")
    page.wait_for_url(f"**/ui/workflows/{BANK}_two")
    written = yaml.safe_load((ui_project / "workflows" / f"{BANK}_two.yml").read_text())
    assert written["jobs"][-1]["tables"][0]["target"] == f"gold_customer_360{SUFFIX}"


def test_4_the_demo_ingest_job_opens_and_saves_without_losing_anything(admin_page: Any, server: str,
                                                                       ui_project: Path) -> None:
    page = admin_page
    path = ui_project / "workflows" / f"{BANK}.yml"
    note = "# accounts change all day; modified_date moves"
    path.write_text(re.sub(r"(?m)^( *)(- \{table: accounts,)", rf"\1{note}\n\1\2", path.read_text()))
    assert "# accounts change all day" in path.read_text()
    original = path.read_text()
    page.goto(server + f"/ui/workflows/{BANK}/jobs/ingest_core_banking")
    tables = page.locator("[data-testid=job-tables]")
    for target in ("bronze_core_customers", "bronze_core_accounts", "bronze_core_transactions"):
        tables.get_by_role("cell", name=target, exact=True).wait_for()
    expect(field(page, "job-description")).to_have_value("Core banking tables to bronze, incremental on modified_date")
    shot(page, "authoring_08_job_editor_three_tables")
    page.click("[data-testid=validate-job]")
    page.locator("[data-testid=validation]").get_by_text("✔ The job is valid.").wait_for()
    page.click("[data-testid=save-job]")
    page.wait_for_url(f"**/ui/workflows/{BANK}")
    assert path.read_text() == original  # saved unchanged: the same file, comment included

    page.goto(server + f"/ui/workflows/{BANK}/jobs/ingest_core_banking")
    tables = page.locator("[data-testid=job-tables]")
    tables.get_by_role("cell", name="bronze_core_accounts", exact=True).click()
    page.get_by_text("Editing table 2 of 3").wait_for()
    expect(field(page, "bronze-target")).to_have_value("bronze_core_accounts")
    expect(field(page, "lookback")).to_have_value("")
    field(page, "lookback").fill("2h")
    page.click("[data-testid=save-job]")
    page.wait_for_url(f"**/ui/workflows/{BANK}")
    job = yaml.safe_load(path.read_text())["jobs"][0]
    assert [t["target"] for t in job["tables"]] == ["bronze_core_customers", "bronze_core_accounts",
                                                    "bronze_core_transactions"]
    assert job["tables"][1]["incremental"] == {"column": "modified_date", "lookback": "2h"}
    assert job["tables"][0]["incremental"] == "modified_date"
    assert job["description"] == "Core banking tables to bronze, incremental on modified_date"
    assert "# accounts change all day; modified_date moves" in path.read_text()

    page.goto(server + f"/ui/workflows/{BANK}/jobs/ingest_core_banking")
    page.click("[data-testid=yaml-tab]")
    text = field(page, "job-yaml")
    text.wait_for()
    expect(text).to_have_value(re.compile("# accounts change all day; modified_date moves"))
    shot(page, "authoring_09_job_yaml_with_comments")


def test_5_clone_and_delete_a_job(admin_page: Any, server: str) -> None:
    page = admin_page
    page.goto(server + f"/ui/workflows/{BANK}")
    page.locator("[data-testid=job-action-pick]").click()
    page.get_by_role("option", name="build_gold_customer_360").click()
    page.click("[data-testid=clone-job]")
    page.click("[data-testid=confirm-clone-job]")
    page.get_by_role("cell", name="build_gold_customer_360_copy", exact=True).wait_for()
    page.get_by_role("cell", name="gold_customer_360_copy", exact=True).wait_for()
    shot(page, "authoring_10_job_cloned")
    page.locator("[data-testid=job-action-pick]").click()
    page.get_by_role("option", name="build_gold_customer_360_copy").click()
    page.click("[data-testid=delete-job]")
    page.get_by_text("Delete job 'build_gold_customer_360_copy'").wait_for()
    page.click("[data-testid=confirm-delete-job]")
    page.get_by_role("cell", name="build_gold_customer_360_copy", exact=True).wait_for(state="detached")
    page.get_by_role("cell", name="build_gold_customer_360", exact=True).wait_for()


def test_6_search_filters_and_aligned_cards(admin_page: Any, server: str) -> None:
    page = admin_page
    page.goto(server + "/ui/workflows")
    page.locator(f"[data-testid=jobs-{RENAMED}]").get_by_text("1 job", exact=True).wait_for()
    page.locator(f"[data-testid=jobs-{BANK}]").get_by_text("4 jobs", exact=True).wait_for()
    lefts = {round(page.locator(f"[data-testid=jobs-{n}]").bounding_box()["x"]) for n in (RENAMED, BANK, f"{BANK}_two")}
    assert len(lefts) == 1, f"the job counts stand in different columns: {lefts}"
    shot(page, "authoring_11_workflow_cards")

    field(page, "wf-search").fill("bank")
    page.locator(f"[data-testid=workflow-{RENAMED}]").wait_for(state="detached")
    page.get_by_text("2 workflows match").wait_for()
    page.locator("[data-testid=wf-filter-tag]").click()
    page.get_by_role("option", name="pilot").click()
    page.locator(f"[data-testid=workflow-{BANK}_two]").wait_for(state="detached")
    page.get_by_text("1 workflow match").wait_for()
    page.locator(f"[data-testid=workflow-{BANK}]").wait_for()
    shot(page, "authoring_12_workflow_search_filter")
    field(page, "wf-search").fill("nothing like this")
    page.locator("[data-testid=workflows-none-match]").get_by_text("No workflow matches").wait_for()
    page.click("[data-testid=clear-filters]")
    page.locator(f"[data-testid=workflow-{RENAMED}]").wait_for()


def test_7_run_logs_wrap_and_long_names_fit_the_lineage_graph(admin_page: Any, server: str) -> None:
    page = admin_page
    page.goto(server + "/ui/runs")
    page.locator("[data-testid=runs-empty]").get_by_text("No runs yet").wait_for()
    page.goto(server + f"/ui/workflows/{RENAMED}")
    page.click("[data-testid=run-workflow]")
    page.wait_for_url(re.compile(r".*/ui/runs/\d+$"))
    page.locator("[data-testid=run-status] [data-testid=status-success]").wait_for(timeout=120_000)
    page.get_by_text(re.compile("totals — success")).click()
    log = page.locator("[data-testid=log-totals]")
    log.wait_for()
    wrap = log.evaluate("el => getComputedStyle(el.querySelector('pre') || el).whiteSpace")
    assert wrap == "pre-wrap"
    # a log line as long as a stack trace or a generated SQL statement: it wraps, nothing scrolls sideways
    wide, room, tall = log.evaluate("""el => {
        const pre = el.querySelector('pre') || el;
        const before = pre.getBoundingClientRect().height;
        const line = 'ERROR reading s3://lake/' + 'very/long/path/'.repeat(60) + 'part-0.parquet';
        pre.querySelector('code').append('\\n' + line);
        return [pre.scrollWidth, pre.clientWidth, pre.getBoundingClientRect().height / before];
    }""")
    assert wide <= room + 1 and tall > 2
    shot(page, "authoring_13_run_log_wraps")

    page.goto(server + f"/ui/workflows/{BANK}_two")
    page.click("[data-testid=lineage-tab]")
    page.locator("[data-testid=lineage-chart] canvas").first.wait_for()
    page.wait_for_timeout(800)
    label = page.evaluate("""() => {
        const chart = getElement(document.querySelector('[data-testid=lineage-chart]')).chart;
        return chart.getOption().series[0].label;
    }""")
    assert label["overflow"] == "breakAll" and label["width"] >= 150
    shot(page, "authoring_14_lineage_long_name")
