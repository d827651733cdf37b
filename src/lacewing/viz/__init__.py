"""lacewing.viz."""
