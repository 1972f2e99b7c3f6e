"""``python -m agentmesh.agents NAME [--coordinator HOST:PORT] [--workspace DIR]``"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from agentmesh.agents.examples import math_agent
from agentmesh.agents.registry import FACTORIES, REFERENCE, build_agent


def main() -> None:
    """Parse the command line, build the agent it names and run it until stopped."""
    p = argparse.ArgumentParser(prog="python -m agentmesh.agents")
    p.add_argument("kind", choices=sorted(FACTORIES))
    p.add_argument(
        "--coordinator", default=os.environ.get("AGENTMESH_COORDINATOR", "localhost:50051")
    )
    p.add_argument("--workspace", default="")
    p.add_argument("--agent-name", default="", help="math only: the agent's name")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    if args.kind == "math" and args.agent_name:
        agent = math_agent(args.coordinator, args.agent_name)
    else:
        options: dict[str, Any] = {}
        if args.workspace and args.kind in REFERENCE:
            options["workspace"] = Path(args.workspace).resolve()
        agent = build_agent(args.kind, args.coordinator, **options)
    agent.run()


if __name__ == "__main__":
    main()
