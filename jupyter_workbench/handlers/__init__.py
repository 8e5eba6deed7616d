"""Thin tornado handlers of the workbench REST API (one module per area)."""
