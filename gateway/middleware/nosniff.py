"""`X-Content-Type-Options: nosniff` on every answer (SPEC §9).

A browser then takes each answer for its declared type: a team's text that the hub
echoes (a recognizer's `raw`, a service name in a CSV) is never run as a script or
styled as a page.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_NAME = b"x-content-type-options"


class NoSniff:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                # The raw list, not MutableHeaders: this runs for every answer the hub
                # gives, the relay's thousands a second (SPEC §8) included.
                headers = list(message.get("headers", ()))
                if not any(name.lower() == _NAME for name, _ in headers):
                    headers.append((_NAME, b"nosniff"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_marked)
