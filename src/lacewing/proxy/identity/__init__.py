"""The proxy's workload identity: in-memory key, certificate renewal, mTLS contexts, peers.

credentials.py  key, CSR, SSLContexts built from memory
client.py       POST /v1/certify to the identity service
renewal.py      first certificate, renewal at 70% of life with backoff (injectable clock)
holder.py       current server/client contexts, swapped without dropping connections
verify.py       the peer's identity, TLS failure reasons
"""
