"""Delivery of lists to their recipients: transports (dir, http, email), the ledger, push()."""

from exitcheck.delivery.push import DeliveryOutcome, failing_departments, push, resolve_departments

__all__ = ["DeliveryOutcome", "failing_departments", "push", "resolve_departments"]
