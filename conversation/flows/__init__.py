"""Conversation flows: small step functions over durable state."""
