"""Relationship stores with revisions: one contract, several backends, one conformance suite."""
