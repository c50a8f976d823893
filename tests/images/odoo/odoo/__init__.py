"""Odoo 17.0 stand-in for stagelet tests (not Odoo)."""
