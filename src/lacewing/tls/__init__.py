"""lacewing.tls."""
