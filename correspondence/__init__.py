"""The domain core: models, sessions, migrations, state machines, audit log and services."""
