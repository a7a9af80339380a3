"""Minyi's composition root: settings, app, CLI, back-office API, lifecycle and workers."""
