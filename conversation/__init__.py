"""The conversation engine: channel-neutral messages, flows and the ports it needs."""
