"""HTTP/1.1 serving shared by the notary members and the devices' JSON-RPC gateway.

See README.md in this folder for the control flow.
"""

from pervasive.http.server import (
    Deferred,
    Handler,
    HttpServer,
    PeerCertificate,
    Refusal,
    Request,
    Response,
    ServerOptions,
    error_response,
    peer_certificate,
)

__all__ = [
    "Deferred",
    "Handler",
    "HttpServer",
    "PeerCertificate",
    "Refusal",
    "Request",
    "Response",
    "ServerOptions",
    "error_response",
    "peer_certificate",
]
