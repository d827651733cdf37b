"""The `lacewing` command. See `main.py` for how commands are found and run."""
