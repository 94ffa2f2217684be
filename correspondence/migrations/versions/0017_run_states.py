"""run states: apply_runs, constituent_imports and report_runs hold a RunState, checked by the database

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03

The three job-like tables kept their state as free text. The column stays what it was (VARCHAR(20),
the same stored values, so every old row reads as before); what is new is a CHECK constraint naming
the values of ``correspondence.models.RunState``, as every other enum column has. Nothing is
rewritten: a row holding anything else stops the migration with the table, the value and how many
rows hold it, for a person to decide.

PostgreSQL adds and drops the constraint in place. SQLite cannot add a constraint to a table, and
batch mode (copy, drop, rename) would fail on ``apply_runs``, which ``responses.run_id`` points at
while foreign keys are enforced. So, as 0014 did for the message status, the table's SQL gains (or
loses) the CHECK clause through writable_schema, after the values were checked, and SQLite's
integrity check runs after each change.
"""
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUN_STATES = ('uploaded', 'queued', 'running', 'done', 'failed')
TABLES = ('apply_runs', 'constituent_imports', 'report_runs')


def _name(table: str) -> str:
    return f"ck_{table}_run_state"


def _condition() -> str:
    return "state IN (" + ", ".join(f"'{v}'" for v in RUN_STATES) + ")"


def _clause(table: str) -> str:
    return f",\n\tCONSTRAINT {_name(table)} CHECK ({_condition()})"


def _check_values(bind: sa.Connection, table: str) -> None:
    stray = bind.execute(sa.text(f"SELECT state, count(*) FROM {table} WHERE state IS NULL OR NOT ({_condition()}) "
                                 "GROUP BY state")).all()
    if stray:
        found = ", ".join(f"{state!r} ({count} rows)" for state, count in stray)
        raise RuntimeError(f"{table}: state holds values that are not a run state: {found}; not changed")


def _rewrite_sqlite(bind: sa.Connection, table: str, change: Callable[[str, str], str]) -> None:
    sql = bind.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                               (table,)).scalar_one()
    new_sql = change(sql, table)
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?", (new_sql, table))
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")
    problems = bind.exec_driver_sql("PRAGMA integrity_check").scalar()
    if problems != "ok":
        raise RuntimeError(f"{table}: integrity check after changing the state constraint: {problems}")


def _add_sqlite(sql: str, table: str) -> str:
    if _name(table) in sql:
        raise RuntimeError(f"{table}: the {_name(table)} constraint is there already; not changed")
    end = sql.rstrip().rfind(")")
    if end < 0:
        raise RuntimeError(f"{table}: cannot read the table's SQL; not changed")
    return sql[:end].rstrip() + _clause(table) + "\n" + sql[end:]


def _drop_sqlite(sql: str, table: str) -> str:
    if _clause(table) not in sql:
        raise RuntimeError(f"{table}: the {_name(table)} constraint is not {_clause(table)!r}; not changed")
    return sql.replace(_clause(table), "")


def upgrade() -> None:
    bind = op.get_bind()
    for table in TABLES:
        _check_values(bind, table)
        if bind.dialect.name == "sqlite":
            _rewrite_sqlite(bind, table, _add_sqlite)
        else:
            op.create_check_constraint(op.f(_name(table)), table, sa.text(_condition()))


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(TABLES):
        if bind.dialect.name == "sqlite":
            _rewrite_sqlite(bind, table, _drop_sqlite)
        else:
            op.drop_constraint(op.f(_name(table)), table, type_="check")
