"""Dial-out recognizers (SPEC §10): recognizers that connect out to the hub over a
WebSocket and are served like HTTP endpoints. `frames` (the messages), `connections`
(live connections as instances), `routes` (`GET /api/v1/connect`), `service` (who may
connect), `limits` (what connections may cost: upgrade rates, caps, a connection's
message budget), `hubs` (the live hubs, looked up once for all connections), `listener`
(the connect route of `recoghub worker --listen`)."""
