"""AgentMesh shared code: the wire helpers, the reference agents, the protocol.

Everything under ``agentmesh/v1`` is produced by ``make proto`` from ``protos/``;
do not edit it by hand. CI fails when it is stale.
"""

#: The one version source: pyproject.toml reads it (``dynamic = ["version"]``).
__version__ = "0.1.0"
