"""Settings, wiring, the web app, the CLI, health and logging: how a Minyi process starts."""
