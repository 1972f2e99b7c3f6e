"""Reference agents built only on the public ``agent_sdk``.

Run one with ``python -m agents NAME --coordinator HOST:PORT``.
"""
