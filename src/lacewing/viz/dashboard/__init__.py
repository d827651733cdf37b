"""The web dashboard: `lacewing viz dashboard` (see `api` for the JSON, `server` for HTTP)."""
