"""The fault suite: a local cluster under counted load, one bounded fault at a time."""
