"""``python -m agents NAME --coordinator HOST:PORT [--agent-name N]``"""

from __future__ import annotations

import argparse
import logging
import os

from agents.examples import AGENTS, math_agent


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m agents")
    p.add_argument("kind", choices=sorted(AGENTS))
    p.add_argument(
        "--coordinator", default=os.environ.get("AGENTMESH_COORDINATOR", "localhost:50051")
    )
    p.add_argument("--agent-name", default="")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    agent = (
        math_agent(args.coordinator, args.agent_name)
        if args.kind == "math" and args.agent_name
        else AGENTS[args.kind](args.coordinator)
    )
    agent.run()


if __name__ == "__main__":
    main()
