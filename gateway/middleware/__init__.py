"""Pure ASGI middleware of the hub: what every request and answer goes through."""
