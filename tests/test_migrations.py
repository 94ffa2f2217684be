"""The migration head matches the models, and upgrade -> downgrade -> upgrade round-trips."""

import os
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from config import Settings
from correspondence.db import Database
from correspondence.migrate import current_revision, downgrade, head_revision, include_object, upgrade
from correspondence.models import Base
from tests.conftest import TEST_SECRET_KEY


@pytest.fixture
def scratch_url(tmp_path):
    """A database of its own: a SQLite file, or a new PostgreSQL database beside the test one."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        yield f"sqlite:///{tmp_path / 'scratch.db'}"
        return
    base = Settings.from_env({"DATABASE_URL": base, "SECRET_KEY": TEST_SECRET_KEY}).database_url
    name = f"mailroom_mig_{uuid.uuid4().hex[:10]}"
    admin = Database(base)
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.rsplit("/", 1)[0] + "/" + name
    yield url
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_head_matches_models(scratch_url):
    upgrade(scratch_url)
    db = Database(scratch_url)
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": include_object})
        diff = compare_metadata(ctx, Base.metadata)
    db.dispose()
    assert diff == [], f"models and migrations differ: {diff}"


def test_upgrade_downgrade_upgrade_round_trips(scratch_url):
    upgrade(scratch_url)
    db = Database(scratch_url)
    assert current_revision(db.engine) == head_revision(scratch_url)
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM topics")).scalar() == 32
    downgrade(scratch_url)
    db.engine.dispose()
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    upgrade(scratch_url)
    db.engine.dispose()
    assert {"messages", "staffers", "constituents", "audit_events", "topics", "blobs"} <= set(
        inspect(db.engine).get_table_names())
    db.dispose()


def test_run_states_0017_keeps_old_rows_checks_new_ones_and_goes_back(scratch_url):
    """0017 adds a CHECK of the run states to the three job tables; the stored strings read as RunState."""
    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.orm import Session

    from correspondence.models import ReportRun, RunState

    def insert(state: str) -> None:
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO report_runs (params, state, progress, created_at) "
                              f"VALUES ('{{}}', '{state}', 0, CURRENT_TIMESTAMP)"))

    upgrade(scratch_url, "0016")
    db = Database(scratch_url)
    insert("running")  # a row from before: a bare string
    db.engine.dispose()
    upgrade(scratch_url)
    with Session(db.engine) as s:
        assert s.scalars(select(ReportRun.state)).all() == [RunState.RUNNING]
    with pytest.raises(IntegrityError):
        insert("paused")
    db.engine.dispose()
    downgrade(scratch_url, "0016")
    db.engine.dispose()
    insert("paused")  # without the CHECK anything goes again ...
    db.engine.dispose()
    with pytest.raises(RuntimeError, match=r"report_runs: state holds values that are not a run state: 'paused'"):
        upgrade(scratch_url)  # ... and such a row stops the upgrade with what it found, changing nothing
    db.engine.dispose()
    assert current_revision(db.engine) == "0016"
    db.dispose()
