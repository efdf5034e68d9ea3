"""Zanzi's benchmark suite: seeded workloads, measured embedded, served and beside SpiceDB."""
