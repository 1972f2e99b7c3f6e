"""Cluster mode: replicas of one coordinator sharing etcd.

``membership`` registers replicas and reads the cluster's status, ``directory`` mirrors
the leader's agent registry into etcd for followers, and ``node`` runs one replica's
life (join, campaign, lead or follow, step down). The KV protocol, its etcd and memory
implementations and the election recipe live below this package, in ``coordinator.kv``.
"""
