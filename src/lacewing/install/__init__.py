"""lacewing.install."""
