"""CLI commands for income bands and deliveries (`exitcheck bands`, `exitcheck deliveries`)."""
