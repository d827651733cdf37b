"""lacewing.core."""
