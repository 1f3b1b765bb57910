"""The status of the response a request got, as the middleware that passed it on saw it."""

from starlette.types import Message, Send


class StatusWatch:
    """A `send` that passes every message on and notes the response's status once it starts."""

    __slots__ = ("send", "status")

    def __init__(self, send: Send) -> None:
        """Pass messages on to `send`; `status` is 0 until the response starts."""
        self.send = send
        self.status = 0

    async def __call__(self, message: Message) -> None:
        """Note the status of a response start, then send the message."""
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self.send(message)
