"""lacewing.k8s."""
