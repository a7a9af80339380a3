"""The HTTP API under /api/v1: cases, events, statistics and the OpenAPI document."""
