"""The server assembly: the one place that builds the parts and wires them together.

``process`` is the coordinator process (gRPC server, health, supervision, ordered
shutdown); ``term`` is what a coordinator runs while it may act (mesh, store, engine
and their servicers); ``replica`` runs a coordinator as one replica of a cluster
(session, election, a term while leading). Every other package sits below this one.
"""

from coordinator.errors import ListenError
from coordinator.server.process import Coordinator, serve, server_options
from coordinator.server.term import Term

__all__ = ["Coordinator", "ListenError", "Term", "serve", "server_options"]
