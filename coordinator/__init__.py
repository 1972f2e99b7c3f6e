"""The AgentMesh coordinator. Layers, lowest first (each imports only those below it;
``tests/unit/test_boundaries.py`` enforces it, ``docs/architecture.md`` draws it):

- ``errors``, ``retry``, ``domain``, ``config``: the domain error tree, backoff
  policies, the value types the core works on (no protobuf), settings
- ``kv/``: the KV protocol (etcd's data model), MemoryKV, EtcdKV, the election recipe
- ``store/``: the engine's event store (memory, SQLite, etcd)
- ``waits``, ``mesh``: tasks no live agent can take; agents, routing, task life
- ``engine/``: workflows: definition, validation, the pure core, the runtime
- ``cluster/``: replica membership, the agent directory in etcd
- ``api/``: the gRPC edge: servicers, status mapping, protobuf <-> domain
- ``server/``: the assembly: the process, a term, a cluster replica

The ``agentmesh`` command lives in ``agentmesh.cli``, above all of these.
"""
