"""Network-namespace "pods" for root integration tests; see bed.py for the layout."""

from tests.support.netns.bed import BedError, Cluster, Pod, Proc, http_get, sweep

__all__ = ["BedError", "Cluster", "Pod", "Proc", "http_get", "sweep"]
