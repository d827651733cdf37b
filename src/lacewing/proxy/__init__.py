"""lacewing.proxy."""
