"""The AgentMesh coordinator: registry, dispatch and the gRPC server around them.

Layout (one concern per module):

- ``config``      settings from defaults, a config file, the environment and flags
- ``domain``      the value types the core works on (no protobuf here)
- ``errors``      the domain error hierarchy; ``api.status`` maps it to gRPC codes
- ``retry``       backoff policies shared by tasks (and later workflow steps)
- ``mesh``        agents, liveness, routing, flow control, task lifecycle
- ``api/``        thin gRPC servicers and the protobuf <-> domain conversions
- ``server``      the process supervisor: start, serve, drain, stop
- ``cli``         the ``agentmesh`` command
"""

__version__ = "0.1.0"
