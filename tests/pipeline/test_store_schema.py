import sqlite3

import pytest

from pipeline.errors import StoreError
from pipeline.store import Store
from pipeline.store_schema import MIGRATIONS, SCHEMA_VERSION, split_sql


def test_migrations_apply_in_order_to_an_old_store(tmp_path):
    """A store made by schema 1 is migrated forward without losing rows."""
    p = tmp_path / "old.sqlite"
    con = sqlite3.connect(p)
    for stmt in split_sql(MIGRATIONS[0]):
        con.execute(stmt)
    con.execute("INSERT INTO meta VALUES ('code_secret', 'abc')")
    con.execute("INSERT INTO subjects VALUES ('S01', 'then')")
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()
    with Store.open(p) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert s.conn.execute("SELECT subject_id FROM subjects").fetchall()[0][0] == "S01"


def test_split_sql_keeps_triggers_whole_and_refuses_a_cut_statement():
    script = """
    CREATE TABLE t (x INTEGER);
    CREATE TRIGGER t_no_update BEFORE UPDATE ON t
    BEGIN SELECT RAISE(ABORT, 't is append-only'); END;
    """
    parts = split_sql(script)
    assert len(parts) == 2 and parts[1].endswith("END;")
    with pytest.raises(StoreError, match="incomplete SQL statement"):
        split_sql("CREATE TABLE t (x INTEGER")


def test_every_migration_applies_on_an_empty_database():
    con = sqlite3.connect(":memory:")
    for version, script in enumerate(MIGRATIONS, start=1):
        for stmt in split_sql(script):
            con.execute(stmt)
        assert version <= SCHEMA_VERSION
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"photos", "results", "measurements"} <= names
