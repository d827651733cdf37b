"""The Kubernetes adapter: the only part of lacewing that imports lightkube.

    kubeconfig.py   find the configuration as kubectl does (flag, KUBECONFIG, ~/.kube, in-cluster)
    cluster.py      `Cluster`: a small synchronous client over generic (dict) resources
    tokenreview.py  the identity service's TokenReview validator

Everything else talks to Kubernetes through `lacewing.k8s.cluster.Cluster` and sees only
dicts and `lacewing.errors.ClusterError`s.
"""
