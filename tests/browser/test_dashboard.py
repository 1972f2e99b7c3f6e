"""The dashboard in a real browser: headless Chromium (Debian's ``chromium``, installed by
``make browser``) driven by Playwright, against a real coordinator and real SDK agents.

It runs the seed's ``project_setup`` from the workflow page and watches the graph: the
steps turn completed in the order the execution's history gives, the decisions light the
branch the plan implies, the branch not taken ends skipped. It pauses, resumes and stops an
execution from the page, and a viewer who signs in sees no controls. With ``AGENTMESH_SCREENSHOTS=docs/img`` it also writes the
README's screenshots.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from agent_sdk import Client
from coordinator.server import Coordinator
from tests.browser.conftest import GATE, shoot, url
from tests.conftest import serving_coordinator
from tests.integration.test_authorization import PRINCIPALS, tokens_yaml
from tests.integration.test_workflows import SETUP_INPUT, Script

pytestmark = pytest.mark.timeout(120)


async def test_project_setup_lights_up_the_graph_in_order(
    page: Page, mesh: tuple[Coordinator, Client, Script]
) -> None:
    c, client, script = mesh
    script.requires_scaffolding, script.issues, script.tests_pass = True, [], True
    await page.goto(url(c, "#/workflows/project_setup"))
    await page.wait_for_selector('g.node[data-step="setup_decisions"]')
    await page.fill('textarea[aria-label="input (JSON)"]', json.dumps(SETUP_INPUT))
    await shoot(page, "workflow.png")
    await page.click("button:text('Start')")
    await page.wait_for_selector("h1:has-text('Execution ')")  # the page it went to
    execution_id = page.url.rsplit("/", 1)[1]
    done = 'g.node[data-step="deploy_project"][data-state="completed"]'
    await page.wait_for_selector(done, timeout=30_000)
    await page.wait_for_selector("#execution-state .state-completed")
    await shoot(page, "execution.png")

    history = await client.get_execution_history(execution_id)
    completed = [e.step_id for e in history if e.type == "step.completed"]
    states: list[list[str]] = await page.evaluate("window.__transitions()")
    lit = [step for step, state in states if state == "completed"]
    assert lit == completed, states  # in the order the execution ran them
    assert "scaffold_project" in lit and "fix_issues" not in lit
    # The decisions took the branches the plan implies, and the others were not run.
    edge = 'path.edge[data-from="{}"][data-to="{}"]'
    assert (
        await page.get_attribute(edge.format("setup_decisions", "scaffold_project"), "class")
        == "edge taken"
    )
    assert (
        await page.get_attribute(edge.format("setup_decisions", "setup_repository"), "class")
        == "edge"
    )
    assert (
        await page.get_attribute(edge.format("handle_review_results", "run_tests"), "class")
        == "edge taken"
    )
    assert await page.get_attribute('g.node[data-step="fix_issues"]', "data-state") == "skipped"
    assert (
        await page.get_attribute('g.node[data-step="fix_test_failures"]', "data-state") == "skipped"
    )


async def test_pause_resume_and_stop_from_the_page(
    page: Page, mesh: tuple[Coordinator, Client, Script]
) -> None:
    c, client, _ = mesh
    started = await client.start_workflow("gate")
    await page.goto(url(c, f"#/executions/{started.id}"))
    await page.wait_for_selector('g.node[data-step="hold"][data-state="running"]')
    await page.click("button:text('Pause')")
    await page.wait_for_selector("#execution-state .state-paused")
    assert (await client.get_execution_status(started.id)).status == "paused"
    await page.click("button:text-is('Resume')")
    await page.wait_for_selector("#execution-state .state-running")
    assert (await client.get_execution_status(started.id)).status == "running"
    await page.click("button:text('Stop')")
    await page.wait_for_selector("#execution-state .state-cancelled")
    assert (await client.get_execution_status(started.id)).status == "cancelled"


async def test_every_page_renders_and_the_theme_switches(
    page: Page, mesh: tuple[Coordinator, Client, Script]
) -> None:
    c, _, _ = mesh
    await page.goto(url(c, "#/overview"))
    await page.wait_for_selector("text=Active executions")
    await shoot(page, "overview.png")
    await page.goto(url(c, "#/agents"))
    await page.wait_for_selector("td >> text=seed")
    for fragment, heading in (("#/executions", "Executions"), ("#/integrations", "Integrations")):
        await page.goto(url(c, fragment))
        await page.wait_for_selector(f"h1:text('{heading}')")
    before: Any = await page.get_attribute("html", "data-theme")
    await page.keyboard.press("Tab")  # the skip link, then the pages: keyboard reachable
    await page.click("#theme")
    assert await page.get_attribute("html", "data-theme") != before


async def test_a_viewer_signs_in_and_sees_no_controls(browser: Browser, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(tokens_yaml())
    async with serving_coordinator(auth_tokens_file=str(tokens)) as c:
        admin = Client(c.address, timeout=10, token=PRINCIPALS["admin"])
        async with admin:
            await admin.define_workflow("gate", GATE)
            started = await admin.start_workflow("gate")
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        page = await context.new_page()
        try:
            await page.goto(url(c, f"#/executions/{started.id}"))
            await page.wait_for_selector("h1:text('Sign in')")  # no token yet: 401
            await page.fill("#token", PRINCIPALS["viewer"])
            await page.click("button:text('Sign in')")
            await page.wait_for_selector('g.node[data-step="hold"][data-state="running"]')
            assert await page.inner_text("#who") == "viewer · default"
            assert await page.locator("button.control").count() == 0  # no pause, resume, stop
            await page.goto(url(c, "#/workflows/gate"))
            await page.wait_for_selector("h2:has-text('gate')")
            assert await page.locator("button:text('Start')").count() == 0
            # An operator, in the same browser, gets the controls.
            await page.click("#signout")
            await page.fill("#token", PRINCIPALS["operator"])
            await page.click("button:text('Sign in')")
            await page.goto(url(c, f"#/executions/{started.id}"))
            await page.wait_for_selector("button:text('Stop')")
            offered = await page.locator(".controls button.control").all_text_contents()
            assert offered == ["Pause", "Stop", "Send event"]  # Resume only when paused
        finally:
            await context.close()
