"""HTTP/1.x decoder: parser, request/response pairing, event fields."""

from __future__ import annotations

from typing import Any, ClassVar

from protocols.handler import ConnectionHandler, ConnInfo, Plugin
from protocols.http.config import DEFAULT_PORTS, HttpConfig
from protocols.http.fields import to_event
from protocols.http.parser import ParserConfig, StreamParser
from protocols.http.transactions import HttpHandler, HttpTransaction
from protocols.registry import register
from protocols.stats import Counters


@register
class HttpPlugin(Plugin):
    name = "http"
    transports = frozenset({"tcp"})
    config_class = HttpConfig
    default_ports: ClassVar[tuple[int, ...]] = DEFAULT_PORTS

    config: HttpConfig

    def __init__(self, config: HttpConfig, stats: Counters) -> None:
        super().__init__(config, stats)
        c = config
        self.parser_config = ParserConfig(
            send_headers=frozenset(c.send_headers),
            send_all_headers=c.send_all_headers,
            real_ip_header=c.real_ip_header,
            include_request_body_for=tuple(c.include_body_for + c.include_request_body_for),
            include_response_body_for=tuple(c.include_body_for + c.include_response_body_for),
            max_message_size=c.max_message_size,
            keep_raw_requests=c.send_request,
            keep_raw_responses=c.send_response,
        )
        #: Parsers between messages, shared by the connections (``HttpHandler._release``).
        self.parser_pool: list[StreamParser] = []

    def new_handler(self, conn: ConnInfo) -> ConnectionHandler:
        return HttpHandler(self, conn)

    def to_event(self, txn: HttpTransaction) -> dict[str, Any]:
        return to_event(self, txn)


PLUGIN = HttpPlugin
__all__ = ["PLUGIN", "HttpConfig", "HttpPlugin"]
