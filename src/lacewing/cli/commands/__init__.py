"""One module per `lacewing` subcommand; each exposes a click command that calls `run()`."""
