"""The dashboard's other pages in a real browser, against a real coordinator: executions
searched, filtered and paged by the coordinator; the start form checked against the
workflow's input schema; an event sent from an execution's page reaching its waiting
step; partial output streaming live and child executions; the overview's queue depth per
capability and charts; the integrations page's webhooks and services."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Page

from agent_sdk import Agent, Client, Task
from coordinator.server import Coordinator
from tests.browser.conftest import shoot, url
from tests.conftest import eventually
from tests.integration.test_workflows import Script

pytestmark = pytest.mark.timeout(120)

Mesh = tuple[Coordinator, Client, Script]
TICK = {"name": "tick", "steps": [{"id": "w", "type": "wait", "wait": {"durationMs": 1}}]}


async def rows(page: Page) -> list[str]:
    """The execution ids (as shown, first 12 characters) of the table on the page."""
    return await page.locator("main table tbody tr td:first-child code").all_inner_texts()


async def test_executions_are_searched_filtered_and_paged(page: Page, mesh: Mesh) -> None:
    c, client, _ = mesh
    started = [
        (await client.start_workflow("gate", {"n": i, "tag": "batch"})).id for i in range(54)
    ]
    needle = (await client.start_workflow("gate", {"tag": "Needle-7Q"})).id
    newest_first = [needle, *reversed(started)]
    await page.goto(url(c, "#/executions"))
    await page.wait_for_selector("text=more on the next page")
    assert await rows(page) == [i[:12] for i in newest_first[:50]]
    await page.click("button:text-is('Next')")
    await page.wait_for_selector("text=5 shown")
    assert await rows(page) == [i[:12] for i in newest_first[50:]]
    assert await page.is_disabled("button:text-is('Next')")
    await page.click("button:text-is('Previous')")
    await page.wait_for_selector("text=50 shown")
    assert (await rows(page))[0] == needle[:12]

    await page.fill('input[name="q"]', "needle-7q")  # the input, any case
    await page.press('input[name="q"]', "Enter")
    print(
        await page.evaluate(
            """fetch('/agentmesh.v1.ExecutionService/ListExecutions', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({query: 'needle-7q', limit: 50})}).then(r => r.text())"""
        ),
    )
    await page.wait_for_selector("text=1 shown")
    assert await rows(page) == [needle[:12]]
    await page.fill('input[name="q"]', started[3][-10:])  # part of an id
    await page.press('input[name="q"]', "Enter")
    await page.wait_for_selector(f"code:text('{started[3][:12]}')")
    assert await rows(page) == [started[3][:12]]
    await page.goto(url(c, "#/executions?status=completed"))
    await page.wait_for_selector("text=no execution matches")
    await page.select_option('select[aria-label="status"]', "running")
    await page.wait_for_url("**/#/executions?status=running")
    await page.wait_for_selector("main table .badge")
    running = [e.id for e in await client.list_executions(statuses=["running"], limit=50)]
    assert running and await rows(page) == [i[:12] for i in running]
    assert set(await page.locator("main table .badge").all_inner_texts()) == {"running"}
    assert await page.input_value('select[aria-label="status"]') == "running"
    await shoot(page, "executions.png")


async def test_the_start_form_checks_the_input_schema(page: Page, mesh: Mesh) -> None:
    c, client, _ = mesh
    await page.goto(url(c, "#/workflows/project_setup"))
    box = 'textarea[aria-label="input (JSON)"]'
    await page.wait_for_selector(box)
    # The template holds what the schema requires.
    assert json.loads(await page.input_value(box)) == {"requirements": ""}
    assert "requirements (required) string" in await page.inner_text("ul.schema")
    await page.fill(box, json.dumps({"priority": "urgent", "projectName": 7}))
    hint = await page.inner_text("#start-problems")
    assert "input.requirements is required" in hint
    assert 'input.priority must be one of "low", "medium", "high"' in hint
    assert "input.projectName must be string, not integer" in hint
    await page.click("button:text-is('Start')")
    await page.wait_for_selector("#status[data-kind='error']")
    assert "not started" in await page.inner_text("#status")
    assert await client.list_executions("project_setup") == []
    await page.fill(box, "{not json")
    assert "is not JSON" in await page.inner_text("#start-problems")


async def test_an_event_sent_from_the_page_reaches_the_waiting_step(page: Page, mesh: Mesh) -> None:
    c, client, _ = mesh
    approval = {
        "name": "approval",
        "steps": [{"id": "wait", "type": "event", "event": {"name": "approved"}}],
    }
    await client.define_workflow("approval", approval)
    started = await client.start_workflow("approval")
    await page.goto(url(c, f"#/executions/{started.id}"))
    await page.wait_for_selector('g.node[data-step="wait"][data-state="running"]')
    await page.click("summary:text('Trigger an event')")
    await page.fill('input[aria-label="event name"]', "approved")
    await page.fill('textarea[aria-label="event payload (JSON)"]', '{"by": "ops"}')
    await page.click("button:text-is('Send event')")
    await page.wait_for_selector("#status:has-text('delivered to 1 waiting execution')")
    await page.wait_for_selector("#execution-state .state-completed")
    assert (await client.get_execution_status(started.id)).status == "completed"
    # Finished: no pause or stop, but it can be run again, with the same input.
    assert await page.locator(".controls button.control").all_text_contents() == ["Run again"]
    await page.click("button:text-is('Run again')")
    await page.wait_for_url(lambda u: started.id not in u)
    again = page.url.rsplit("/", 1)[1]
    await page.wait_for_selector(f"h1:has-text('{again}')")
    assert again != started.id
    assert (await client.get_execution_status(again)).workflow_name == "approval"


@pytest.fixture
async def streamer(mesh: Mesh) -> AsyncIterator[asyncio.Event]:
    """An agent whose ``stream`` capability streams "hello ", waits for the event the
    fixture yields, streams "world" and returns."""
    c, _, _ = mesh
    release = asyncio.Event()
    agent = Agent("streamer", c.address)

    async def stream(task: Task) -> Any:
        await task.stream("hello ")
        await release.wait()
        await task.stream("world")
        return {"said": "hello world"}

    agent.add_capability("stream", stream)
    serving = asyncio.create_task(agent.serve())
    await agent.wait_connected(10)
    try:
        yield release
    finally:
        release.set()
        await agent.shutdown(grace=1)
        await asyncio.wait_for(serving, 5)


async def test_partial_output_streams_live_and_children_are_listed(
    page: Page, mesh: Mesh, streamer: asyncio.Event
) -> None:
    c, client, _ = mesh
    child = {"name": "talk", "steps": [{"id": "say", "type": "task", "capability": "stream"}]}
    parent = {"name": "host", "steps": [{"id": "call", "type": "subworkflow", "workflow": "talk"}]}
    await client.define_workflow("talk", child)
    await client.define_workflow("host", parent)
    top = await client.start_workflow("host")
    await page.goto(url(c, f"#/executions/{top.id}"))
    link = "#children table a"
    await page.wait_for_selector(link)
    kid = (await page.get_attribute(link, "href") or "").rsplit("/", 1)[1]
    assert [e.id for e in await client.list_executions(parent_id=top.id)] == [kid]
    await page.click(link)
    await page.wait_for_selector('pre.stream[data-step="say"]:has-text("hello")')
    assert await page.inner_text('pre.stream[data-step="say"]') == "hello "
    streamer.set()
    await page.wait_for_selector('pre.stream[data-step="say"]:has-text("hello world")')
    await page.wait_for_selector("#execution-state .state-completed")
    assert "say" in await page.inner_text("#steps table")
    assert "streamer" in await page.inner_text("#steps table")  # the agent that ran it


async def test_overview_and_integrations_show_live_state(
    page: Page, mesh: Mesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    c, client, _ = mesh
    monkeypatch.setenv("AGENTMESH_SECRET_HOOK_SECRET", "a-webhook-secret-of-32-characters")
    waiting = await client.assign_task("nobody-serves-this", {}, wait_for_agent=True)
    await client.register_webhook(
        "execution.failed", "http://127.0.0.1:9/hook", secret_ref="hook-secret"
    )
    await client.register_external_service(
        "github",
        "http://127.0.0.1:9",
        rate_limit_per_second=5,
        operations={"repo": "GET /repos/{r}"},
    )
    await page.goto(url(c, "#/overview"))
    await page.wait_for_selector("td:text-is('nobody-serves-this')")
    row = page.locator("tr", has=page.locator("td:text-is('nobody-serves-this')"))
    assert (await row.locator("td").all_inner_texts())[1:] == ["1", "0"]  # queued, serving
    assert await page.locator("figure.chart").count() == 4
    assert "1 online" in await page.inner_text(".cards")  # the seed agent
    await shoot(page, "overview.png")
    await page.goto(url(c, "#/integrations"))
    await page.wait_for_selector("td:text-is('github')")
    service = await page.locator("tr", has=page.locator("td:text-is('github')")).inner_text()
    assert "closed" in service and "5/s" in service and "repo" in service
    hook = await page.locator("tr", has=page.locator("td:text-is('execution.failed')")).inner_text()
    assert "http://127.0.0.1:9/hook" in hook
    await client.cancel_task(waiting.id)


async def test_a_dead_letter_is_redelivered_from_the_page(
    page: Page, mesh: Mesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    c, client, _ = mesh
    monkeypatch.setenv("AGENTMESH_SECRET_HOOK_SECRET", "a-webhook-secret-of-32-characters")
    hook = await client.register_webhook(
        "execution.completed", "http://127.0.0.1:9/down", secret_ref="hook-secret", max_attempts=1
    )
    await client.define_workflow("tick", TICK)
    done = await client.start_workflow("tick")
    await client.wait_execution(done.id, timeout=10)
    await eventually(lambda: client.list_dead_letters(hook.id), timeout=30)
    [dead] = await client.list_dead_letters(hook.id)
    await page.goto(url(c, "#/integrations"))
    await page.wait_for_selector(f"code:text-is('{dead.id}')")
    row = page.locator("tr", has=page.locator(f"code:text-is('{dead.id}')"))
    assert "execution.completed" in await row.inner_text()
    await row.locator("button:text-is('Redeliver')").click()
    await page.wait_for_selector("#status:has-text('redelivered 1')")
    # Back in the outbox, it fails again (the port is closed) and is a dead letter again.
    await eventually(lambda: client.list_dead_letters(hook.id), timeout=30)
