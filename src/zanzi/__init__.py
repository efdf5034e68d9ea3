"""Zanzi: Google Zanzibar-style relationship-based authorization for Python."""
