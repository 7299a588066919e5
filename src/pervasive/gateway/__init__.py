"""The devices' JSON-RPC 2.0 gateway over HTTPS with client certificates (paper 004, 4.6).

See README.md in this folder for the control flow.
"""

from pervasive.gateway.client import open_gateway_ledger
from pervasive.gateway.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    NODE_UNAVAILABLE,
    NOT_ALLOWED,
    PARSE_ERROR,
    RATE_LIMITED,
    UNAUTHORISED,
    Call,
    Invalid,
    MalformedRequest,
    ParsedRequest,
    parse_request,
)
from pervasive.gateway.limits import RateLimiter, TokenBucket
from pervasive.gateway.policy import Permissions, Policy, Rejection, Role, SaleOrderRules, Verdict
from pervasive.gateway.roles import RoleBook, parse_role, roles_file
from pervasive.gateway.server import (
    FILE_RECHECK,
    GATEWAY_SERVICE,
    Gateway,
    OrderCheck,
    loop_factory,
)
from pervasive.gateway.upstream import HttpUpstream, LedgerUpstream

__all__ = [
    "FILE_RECHECK",
    "GATEWAY_SERVICE",
    "INTERNAL_ERROR",
    "INVALID_REQUEST",
    "NODE_UNAVAILABLE",
    "NOT_ALLOWED",
    "PARSE_ERROR",
    "RATE_LIMITED",
    "UNAUTHORISED",
    "Call",
    "Gateway",
    "HttpUpstream",
    "Invalid",
    "LedgerUpstream",
    "MalformedRequest",
    "OrderCheck",
    "ParsedRequest",
    "Permissions",
    "Policy",
    "RateLimiter",
    "Rejection",
    "Role",
    "RoleBook",
    "SaleOrderRules",
    "TokenBucket",
    "Verdict",
    "loop_factory",
    "open_gateway_ledger",
    "parse_request",
    "parse_role",
    "roles_file",
]
