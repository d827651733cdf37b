"""Manifests for `install`, `upgrade` and `uninstall`, and the one definition of the sidecar.

values.py       the typed install values; `--values FILE` and `--set a.b=c` overlays
sidecar.py      the proxy container, its init container and volumes (install + inject)
crds.py         the CustomResourceDefinitions with their openAPIV3Schemas
credentials.py  certificates to install: generated, from files, or kept on upgrade
rbac.py         ServiceAccounts and (Cluster)Roles as data
render.py       values + credentials -> the control plane's objects, in apply order
output.py       objects -> YAML documents or a JSON List for `kubectl apply -f -`
"""
