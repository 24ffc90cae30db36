"""OAuth 2.0 client pieces: I/O-free builders and parsers (``authorize``, ``tokens``) and the
few HTTP calls toolauth makes with its own ``httpx`` client (``calls``).

Authlib owns the protocol; toolauth uses its I/O-free parts (RFC 6749 parameters, RFC 7636
challenges) and makes the HTTP calls itself, so the public HTTP type stays ``httpx``.
"""
