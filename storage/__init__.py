"""Persistence: models, migrations, unit of work, conversation stores, outbox, PII crypto."""
