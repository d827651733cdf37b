"""Tap: live request metadata streamed from the proxy to authorized clients (port 4190).

- `filter`: the tap request (a `TapFilter`) and the event it matches (`TapEvent`), both pure
  data; `TapFilter.matches(event)` and `encode_event(event)` (one JSON line).
- `hub`: the proxy's side: `TapPoint` (a one-attribute switch every `RouteStats` shares,
  `hub` None while nobody taps) and `TapHub`, the active taps with their bounded queues.
- `server`: the mutual-TLS listener (imported only when the proxy serves tap, so a proxy
  that nobody taps imports none of it at start beyond this docstring's package).
"""
