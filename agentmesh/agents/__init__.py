"""Reference agents built only on the public ``agent_sdk``.

Run one with ``python -m agentmesh.agents NAME --coordinator HOST:PORT``.
"""

from pathlib import Path

#: The seed's workflow definitions (YAML), shipped inside the package.
WORKFLOWS = Path(__file__).resolve().parent / "workflows"
