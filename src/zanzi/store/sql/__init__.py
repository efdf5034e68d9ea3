"""SQL backends of the store contract and the helpers they share."""
