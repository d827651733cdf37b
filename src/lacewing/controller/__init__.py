"""lacewing.controller."""
