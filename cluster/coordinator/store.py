"""The coordinator's durable copy of the cluster state: one SQLite row, replaced at every commit.

SQLite in WAL mode with `synchronous=FULL`: a commit that returned survives a crash of the coordinator, so
a restarted coordinator resumes with the same version, replica map and transfers in progress.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any


class StateStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=FULL")
        self.connection.execute(
            "CREATE TABLE IF NOT EXISTS cluster_state (id INTEGER PRIMARY KEY CHECK (id = 1), "
            "version INTEGER NOT NULL, body TEXT NOT NULL)")

    def load(self) -> dict[str, Any] | None:
        row = self.connection.execute("SELECT body FROM cluster_state WHERE id = 1").fetchone()
        return json.loads(row[0]) if row else None

    def save(self, data: dict[str, Any]) -> None:
        body = json.dumps(data, sort_keys=True)
        self.connection.execute(
            "INSERT INTO cluster_state (id, version, body) VALUES (1, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET version = excluded.version, body = excluded.body",
            (int(data["version"]), body))

    def close(self) -> None:
        self.connection.close()
