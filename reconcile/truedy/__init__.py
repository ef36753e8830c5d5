"""The Truedy API client: typed records, paging, retries and pacing."""

from reconcile.retry import RetryPolicy
from reconcile.truedy.client import TruedyClient
from reconcile.truedy.http import make_http_client
from reconcile.truedy.records import (
    Agent,
    Assignment,
    Call,
    CostInformation,
    DataIssue,
    Invoice,
    LineItem,
    PhoneNumber,
)
from reconcile.truedy.results import Listing

__all__ = [
    "Agent",
    "Assignment",
    "Call",
    "CostInformation",
    "DataIssue",
    "Invoice",
    "LineItem",
    "Listing",
    "PhoneNumber",
    "RetryPolicy",
    "TruedyClient",
    "make_http_client",
]
