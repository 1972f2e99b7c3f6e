"""What the browser tests share: headless Chromium (Debian's ``chromium``, installed by
``make browser``) under Playwright, a real coordinator with a seed agent and the seed's
workflows (``mesh``), and a page at 1280x800 that records every graph node's state
change and fails the test on any script error."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from agent_sdk import Client
from coordinator.server import Coordinator
from tests.conftest import ROOT, serving_coordinator
from tests.integration.test_workflows import WORKFLOWS, Script, seed_agent

CHROMIUM = shutil.which("chromium") or ""
# As the machine's notes say: no background networking on a closed network.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
GATE = {"name": "gate", "steps": [{"id": "hold", "type": "wait", "wait": {"seconds": 60}}]}
# Every data-state change of a graph node, in order, as [step, new state] pairs (a record
# holds the old value; the new one is the next record's old value, or the current one).
RECORDER = """
const records = [];
new MutationObserver((changes) => {
  for (const c of changes) {
    if (c.target.dataset.step) records.push([c.target, c.oldValue]);
  }
}).observe(document, {subtree: true, attributeOldValue: true, attributeFilter: ["data-state"]});
window.__transitions = () => records.map(([node], i) => {
  const next = records.slice(i + 1).find(([other]) => other === node);
  return [node.dataset.step, next ? next[1] : node.dataset.state];
});
"""


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM:
        pytest.fail("Chromium is not installed: run 'make browser' (Debian's chromium package)")
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[tuple[Coordinator, Client, Script]]:
    settings = {"state_persistence": "sqlite", "store_path": str(tmp_path / "am.db")}
    async with serving_coordinator(**settings) as c:
        script = Script()
        agent = seed_agent(c.address, script)
        serving = asyncio.create_task(agent.serve())
        await agent.wait_connected(10)
        async with Client(c.address, timeout=10) as client:
            for f in sorted(WORKFLOWS.glob("*.yaml")):
                await client.load_workflow(f)
            await client.define_workflow("gate", GATE)
            try:
                yield c, client, script
            finally:
                await agent.shutdown(grace=1)
                await asyncio.wait_for(serving, 5)


@pytest.fixture
async def page(browser: Browser, mesh: tuple[Coordinator, Client, Script]) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda e: errors.append(str(e)))
    await opened.add_init_script(RECORDER)
    try:
        yield opened
    finally:
        await context.close()
    assert not errors, errors  # no script error on any page


def url(c: Coordinator, fragment: str = "") -> str:
    assert c.http is not None
    return f"{c.http.url}/{fragment}"


async def shoot(page: Page, name: str) -> None:
    where = os.environ.get("AGENTMESH_SCREENSHOTS")
    if where:
        target = ROOT / where
        target.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(target / name), full_page=False)
