"""Observability: the event log (global order, subscriptions, resume), metrics, and
their exports (Prometheus). Fed by the engine, the mesh and the cluster; read by the
api's Event and Metrics services and the HTTP listener."""
