"""The identity controller: a CA that certifies workloads' service accounts.

service.py       request -> checks -> leaf or refusal (no transport)
issuer_files.py  the issuer from tls.crt/tls.key, reloaded when the files change
server.py        HTTPS server for POST /v1/certify (and GET /ready)
validators.py    table of token validators (kubernetes, local)
"""
