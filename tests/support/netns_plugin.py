"""Placeholder: fixtures for network-namespace "pods" live here."""
