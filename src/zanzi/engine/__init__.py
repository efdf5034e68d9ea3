"""The Zanzibar engine: check, expand, lookup-resources and lookup-subjects over a snapshot."""
