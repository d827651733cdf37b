"""lacewing.healthcheck."""
