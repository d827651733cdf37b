"""Placeholder: the Kubernetes API test bed's fixtures live here."""
