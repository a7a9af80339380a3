"""Channel adapters: each turns a provider's payloads into Inbound and Replies into provider calls."""
