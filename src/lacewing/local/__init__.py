"""lacewing.local."""
