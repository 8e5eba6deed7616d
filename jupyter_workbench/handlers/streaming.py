"""What the ``@web.stream_request_body`` handlers share."""

from __future__ import annotations


class RefusesUnreadBodies:
    """Mix into a streaming handler (before the RequestHandler): a request refused before its
    body was read (set ``refused_unread``) answers ``Connection: close``. Tornado cannot read
    another request on that connection and drops it; without the header, the client reuses it
    and meets a reset."""

    refused_unread = False

    def clear(self) -> None:  # tornado's send_error() clears the headers before writing
        super().clear()  # type: ignore[misc]
        if self.refused_unread:
            self.set_header("Connection", "close")  # type: ignore[attr-defined]
