"""Generated protocol code for AgentMesh (``agentmesh.v1``).

Everything under ``agentmesh/v1`` is produced by ``make proto`` from ``protos/``;
do not edit it by hand. CI fails when it is stale.
"""
