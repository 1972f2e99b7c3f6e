"""The SQLite store's schema: its tables, and the migrations from each older version.

``create_schema`` creates a new database, or migrates one of an older version in one
transaction (tables first, then each version's statements, then the indexes), or
refuses one newer than this code.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from ._errors import StoreError

SCHEMA_VERSION: Final = 6

_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS events (
        execution_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        type TEXT NOT NULL,
        time TEXT NOT NULL,
        data TEXT NOT NULL,
        position INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (execution_id, seq)
    ) WITHOUT ROWID""",
    # The global log (read_log): only events that are in it.
    "CREATE INDEX IF NOT EXISTS events_position ON events (position) WHERE position > 0",
    # The log's reservation (reserve_positions): at most one row.
    "CREATE TABLE IF NOT EXISTS log_floor (floor INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS executions (
        id TEXT PRIMARY KEY,
        workflow_name TEXT NOT NULL,
        workflow_version TEXT NOT NULL,
        status TEXT NOT NULL,
        created TEXT NOT NULL,
        updated TEXT NOT NULL,
        parent_id TEXT NOT NULL,
        last_seq INTEGER NOT NULL,
        idempotency_key TEXT NOT NULL DEFAULT '',
        parent_key TEXT NOT NULL DEFAULT '',
        namespace TEXT NOT NULL DEFAULT 'default'
    )""",
    "CREATE INDEX IF NOT EXISTS executions_status ON executions (status)",
    # Partial indexes: a query uses one only if it repeats the index's WHERE clause.
    # (created, id) too: find_execution's order, or SQLite prefers the index below.
    """CREATE INDEX IF NOT EXISTS executions_namespace_idempotency_key
        ON executions (namespace, idempotency_key, created, id) WHERE idempotency_key != ''""",
    "CREATE INDEX IF NOT EXISTS executions_workflow_name ON executions (workflow_name)",
    """CREATE INDEX IF NOT EXISTS executions_parent
        ON executions (parent_id, parent_key) WHERE parent_id != ''""",
    """CREATE INDEX IF NOT EXISTS executions_namespace_created
        ON executions (namespace, created, id)""",
    """CREATE TABLE IF NOT EXISTS workflows (
        namespace TEXT NOT NULL,
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        definition TEXT NOT NULL,
        created TEXT NOT NULL,
        PRIMARY KEY (namespace, name, version)
    )""",
    """CREATE TABLE IF NOT EXISTS documents (
        kind TEXT NOT NULL,
        namespace TEXT NOT NULL,
        name TEXT NOT NULL,
        data TEXT NOT NULL,
        updated TEXT NOT NULL,
        PRIMARY KEY (kind, namespace, name)
    ) WITHOUT ROWID""",
)

# version -> the statements that bring version - 1 up to it (indexes come from _SCHEMA).
_MIGRATIONS: Final = {
    # executions gained idempotency_key
    2: ("ALTER TABLE executions ADD COLUMN idempotency_key TEXT NOT NULL DEFAULT ''",),
    # executions gained parent_key, filled in from each child's ExecutionStarted context
    3: (
        "ALTER TABLE executions ADD COLUMN parent_key TEXT NOT NULL DEFAULT ''",
        """UPDATE executions SET parent_key = COALESCE((
                SELECT json_extract(data, '$.context.parentKey') FROM events
                WHERE events.execution_id = executions.id AND type = 'ExecutionStarted'
            ), '') WHERE parent_id != ''""",
    ),
    # namespaces: executions gained namespace; workflows are keyed by (namespace, name,
    # version), so the table is rebuilt (SQLite cannot change a primary key in place);
    # every existing row belongs to the default namespace
    4: (
        "ALTER TABLE executions ADD COLUMN namespace TEXT NOT NULL DEFAULT 'default'",
        "DROP INDEX IF EXISTS executions_idempotency_key",  # now per namespace
        """CREATE TABLE workflows_v4 (
            namespace TEXT NOT NULL,
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            definition TEXT NOT NULL,
            created TEXT NOT NULL,
            PRIMARY KEY (namespace, name, version)
        )""",
        """INSERT INTO workflows_v4 (namespace, name, version, definition, created)
            SELECT 'default', name, version, definition, created FROM workflows""",
        "DROP TABLE workflows",
        "ALTER TABLE workflows_v4 RENAME TO workflows",
    ),
    # the global event log: events gained position; the events already stored join
    # the log in time order (then execution, then seq), before anything new
    5: (
        "ALTER TABLE events ADD COLUMN position INTEGER NOT NULL DEFAULT 0",
        """UPDATE events SET position = numbered.n FROM (
                SELECT execution_id AS id, seq AS s,
                    row_number() OVER (ORDER BY time, execution_id, seq) AS n
                FROM events
            ) AS numbered
            WHERE events.execution_id = numbered.id AND events.seq = numbered.s""",
    ),
    # integrations' documents (external services, webhooks, deliveries): a new table,
    # created with the others
    6: (),
}


def _has_column_already(conn: sqlite3.Connection, statement: str) -> bool:
    """Whether ``statement`` adds a column the table already has: a table the step
    above created from today's schema (it did not exist in the old database)."""
    words = statement.split()
    if words[:2] != ["ALTER", "TABLE"] or words[3:5] != ["ADD", "COLUMN"]:
        return False
    table, column = words[2], words[5]
    return any(row[1] == column for row in conn.execute(f"PRAGMA table_info({table})"))


def create_schema(conn: sqlite3.Connection, path: str) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        found = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
        if found is not None and found < SCHEMA_VERSION:
            # Tables first (a no-op for those that exist), so migrations can read them;
            # the indexes below may name the columns the migrations add.
            for statement in _SCHEMA:
                if statement.startswith("CREATE TABLE"):
                    conn.execute(statement)
            for version in range(found + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[version]:
                    if not _has_column_already(conn, statement):
                        conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            found = SCHEMA_VERSION
        if found is not None and found != SCHEMA_VERSION:
            newer = "newer than" if found > SCHEMA_VERSION else "different from"
            raise StoreError(
                f"{path}: schema version {found} is {newer} the supported version "
                f"{SCHEMA_VERSION}; use the agentmesh release that wrote it"
            )
        for statement in _SCHEMA:
            conn.execute(statement)
        if found is None:
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
