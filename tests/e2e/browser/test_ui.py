"""What a user does in the web UI, in order: sign in, create the BFSI workflow from the
template gallery, set up a PostgreSQL source in the job editor, run the workflow and watch it
finish, then explore its lineage and the catalog. Each page is saved as a screenshot."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.browser.conftest import ADMIN_PASSWORD, shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WORKFLOW = "bfsi_from_ui"


def field(page: Any, testid: str) -> Any:
    """A text field by its test id (Quasar puts the attribute on the native input)."""
    return page.locator(f"input[data-testid={testid}], [data-testid={testid}] input").first


def test_pages_need_a_login_and_bad_passwords_are_refused(browser: Any, server: str) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(server + "/ui/runs")
    page.wait_for_url("**/ui/login?next=/ui/runs")
    shot(page, "01_login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "not the password")
    page.click("[data-testid=sign-in]")
    page.get_by_text("Wrong user name or password.").wait_for()
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("[data-testid=sign-in]")
    page.wait_for_url("**/ui/runs")  # back where the user was going
    page.get_by_text("admin (admin)").wait_for()
    context.close()


def test_create_the_bfsi_workflow_from_the_template_gallery(admin_page: Any, server: str) -> None:
    page = admin_page
    page.goto(server + "/ui/templates")
    card = page.locator("[data-testid=template-bfsi_customer_360]")
    card.wait_for()
    page.locator("[data-testid=filter-industry]").click()
    page.get_by_role("option", name="bfsi").click()
    card.wait_for()
    shot(page, "02_template_gallery")

    page.click("[data-testid=preview-bfsi_customer_360]")
    dialog = page.locator(".q-dialog")
    dialog.get_by_text("build_gold_customer_360").first.wait_for()
    dialog.locator("[data-testid=template-flow] canvas").first.wait_for()
    shot(page, "03_template_preview")
    dialog.get_by_role("button", name="Close").click()
    dialog.wait_for(state="detached")

    page.click("[data-testid=use-bfsi_customer_360]")
    name = field(page, "param-workflow_name")
    name.fill(WORKFLOW)
    page.click("[data-testid=wizard-next-1]")
    page.locator("[data-testid=wizard-next-2]").wait_for()
    shot(page, "04_template_wizard")
    page.click("[data-testid=wizard-next-2]")
    page.click("[data-testid=wizard-create]")
    page.wait_for_url(f"**/ui/workflows/{WORKFLOW}")
    page.get_by_text("ingest_core_banking").wait_for()
    page.get_by_text("build_gold_customer_360").wait_for()
    shot(page, "05_workflow_detail")

    page.goto(server + "/ui/workflows")
    page.locator(f"[data-testid=workflow-{WORKFLOW}]").wait_for()
    shot(page, "06_workflows")


def test_postgres_connection_form_tests_and_previews_a_table(admin_page: Any, server: str,
                                                             pg_database: str) -> None:
    import psycopg

    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE branches (branch_id int PRIMARY KEY, city text NOT NULL, "
                     "modified_date timestamp NOT NULL)")
        conn.execute("INSERT INTO branches SELECT i, 'city ' || i, timestamp '2026-01-01' + i * interval '1 day' "
                     "FROM generate_series(1, 25) AS i")
    database = pg_database.rsplit("/", 1)[1]
    page = admin_page
    page.goto(server + f"/ui/workflows/{WORKFLOW}/jobs/new")
    page.locator("[data-testid=connection-mode]").get_by_text("New connection").click()
    field(page, "conn-name").fill("branches_pg")
    field(page, "conn-host").fill("127.0.0.1")
    field(page, "conn-port").fill("5432")
    field(page, "conn-database").fill(database + "_missing")
    page.locator("[data-testid=conn-auth]").click()
    page.get_by_role("option", name=re.compile("No password")).click()
    field(page, "conn-user").fill("postgres")
    page.click("[data-testid=test-connection]")
    result = page.locator("[data-testid=connection-result]")
    result.get_by_text(re.compile("^Connection failed: ")).wait_for()
    assert "does not exist" in result.inner_text() or "database" in result.inner_text()

    field(page, "conn-database").fill(database)
    page.click("[data-testid=test-connection]")
    result.get_by_text(re.compile(f"Connected to postgresql://127.0.0.1:5432/{database}")).wait_for()

    page.locator("[data-testid=table-picker]").click()
    page.get_by_role("option", name="public.branches").click()
    preview = page.locator("[data-testid=table-preview]")
    preview.get_by_text("city 1", exact=True).wait_for()
    assert preview.locator("tbody tr").count() == 10  # a 10-row sample of 25
    page.get_by_text("modified_date").first.wait_for()

    page.locator("[data-testid=incremental]").click()
    page.locator("[data-testid=delta-column]").click()
    page.get_by_role("option", name="modified_date").click()
    field(page, "bronze-target").fill("1 not a name")
    page.click("[data-testid=validate-job]")
    messages = page.locator("[data-testid=validation]")
    messages.get_by_text(re.compile("target")).first.wait_for()
    shot(page, "07_job_editor_postgres")
    field(page, "bronze-target").fill("bronze_branches")
    page.click("[data-testid=validate-job]")
    messages.get_by_text(re.compile("✔ The job is valid|connection")).first.wait_for()


def test_run_the_workflow_and_watch_it_finish(admin_page: Any, server: str) -> None:
    page = admin_page
    page.goto(server + f"/ui/workflows/{WORKFLOW}")
    page.click("[data-testid=run-workflow]")
    page.wait_for_url(re.compile(r".*/ui/runs/\d+$"))
    page.locator("[data-testid=run-status] [data-testid=status-success]").wait_for(timeout=240_000)
    page.get_by_text(re.compile("build_gold_customer_360 — success")).wait_for()
    shot(page, "08_run_detail")
    page.get_by_text(re.compile("ingest_core_banking — success")).click()
    page.get_by_text(re.compile("rows|wrote|read", re.I)).first.wait_for()

    page.goto(server + "/ui/runs")
    page.locator("tbody tr").first.get_by_text("success").wait_for()
    shot(page, "09_runs")


def _node_position(page: Any, node: str) -> tuple[float, float]:
    """Where ECharts drew a graph node, in page pixels."""
    box = page.locator("[data-testid=lineage-chart]").bounding_box()
    x, y = page.evaluate(
        """(name) => {
            const el = document.querySelector('[data-testid=lineage-chart]');
            const chart = getElement(el).chart;
            const data = chart.getModel().getSeriesByIndex(0).getData();
            const i = data.indexOfName(name);
            return chart.convertToPixel({seriesIndex: 0}, data.getItemLayout(i));
        }""", node)
    return box["x"] + x, box["y"] + y


def test_lineage_graph_hover_shows_rows_and_click_opens_the_table(admin_page: Any, server: str) -> None:
    page = admin_page
    page.goto(server + f"/ui/workflows/{WORKFLOW}")
    page.click("[data-testid=lineage-tab]")
    page.locator("[data-testid=lineage-chart] canvas").first.wait_for()
    page.wait_for_timeout(1200)
    x, y = _node_position(page, "gold_customer_360")
    page.mouse.move(x - 40, y - 40)
    page.mouse.move(x, y, steps=5)
    tooltip = page.get_by_text(re.compile(r"rows: [\d,]+"))
    tooltip.first.wait_for()
    text = page.locator("[data-testid=lineage-chart]").inner_text()
    assert "gold_customer_360" in text and "last update:" in text
    shot(page, "10_lineage_hover")

    page.locator("[data-testid=highlight-job]").click()
    page.get_by_role("option", name="build_silver_customer_master").click()
    page.wait_for_timeout(600)
    shot(page, "11_lineage_highlight")

    x, y = _node_position(page, "gold_customer_360")
    page.mouse.click(x, y)
    page.wait_for_url("**/ui/catalog/gold_customer_360")
    page.locator("[data-testid=table-summary]").get_by_text(re.compile("gold · [\\d,]+ rows")).wait_for()
    page.get_by_role("tab", name="Sample rows").click()
    page.locator("tbody tr").first.wait_for()
    shot(page, "12_catalog_table")

    response = page.request.get(server + f"/ui/workflows/{WORKFLOW}/lineage.json")
    graph = response.json()
    gold = next(n for n in graph["nodes"] if n["id"] == "gold_customer_360")
    assert gold["type"] == "gold" and gold["rows"] > 0


def test_catalog_and_audit_log(admin_page: Any, server: str) -> None:
    page = admin_page
    page.goto(server + "/ui/catalog")
    page.get_by_role("cell", name="bronze_core_customers", exact=True).wait_for()
    shot(page, "13_catalog")
    page.goto(server + "/ui/audit")
    page.get_by_text("template.instantiate").first.wait_for()
    shot(page, "14_audit")


def test_clone_pause_resume_and_delete_with_confirmation(admin_page: Any, server: str) -> None:
    page = admin_page
    copy = f"{WORKFLOW}_copy"
    page.goto(server + "/ui/workflows")
    page.click(f"[data-testid=clone-{WORKFLOW}]")
    page.get_by_role("button", name="Clone").click()
    card = page.locator(f"[data-testid=workflow-{copy}]")
    card.wait_for()

    page.click(f"[data-testid=pause-{copy}]")
    card.locator("[data-testid=status-paused]").wait_for()
    page.click(f"[data-testid=pause-{copy}]")
    card.locator("[data-testid=status-active]").first.wait_for()

    page.click(f"[data-testid=delete-{copy}]")
    page.get_by_text(f"Delete workflow '{copy}'?").wait_for()
    shot(page, "16_delete_confirmation")
    page.click("[data-testid=confirm-delete]")
    card.wait_for(state="detached")
    assert page.locator(f"[data-testid=workflow-{WORKFLOW}]").count() == 1


def test_viewers_get_read_only_pages(browser: Any, server: str, ui_project: Any) -> None:
    from flowforge.core.context import Context

    with Context.open(ui_project) as ctx:
        ctx.users.create_user("vera", "viewer-password", role="viewer")
    page = sign_in(browser, server, "vera", "viewer-password")
    page.locator(f"[data-testid=workflow-{WORKFLOW}]").wait_for()
    assert page.locator(f"[data-testid=run-{WORKFLOW}]").count() == 0
    page.goto(server + f"/ui/workflows/{WORKFLOW}")
    page.get_by_text("ingest_core_banking").wait_for()
    assert page.locator("[data-testid=run-workflow]").count() == 0
    page.goto(server + f"/ui/workflows/{WORKFLOW}/jobs/ingest_core_banking")
    page.get_by_text("You have read-only access").wait_for()
    assert page.locator("[data-testid=test-connection]").count() == 0
    assert "sqlite:///" in page.content()  # where it points, and nothing more
    shot(page, "15_viewer_job")
    page.context.close()


def test_the_header_links_reach_their_pages(admin_page: Any, server: str) -> None:
    page = admin_page
    page.goto(server + "/ui/workflows")
    hrefs = page.evaluate("() => Array.from(document.querySelectorAll('header a')).map(a => a.getAttribute('href'))")
    assert "/ui/audit" in hrefs and all(h.startswith("/ui/") and not h.startswith("/ui/ui/") for h in hrefs)
    for label in ("Templates", "Runs", "Catalog", "Audit log", "Workflows"):
        page.locator("header").get_by_text(label, exact=True).click()
        page.wait_for_load_state()
        assert "404" not in page.title() and "doesn't exist" not in page.content(), label
