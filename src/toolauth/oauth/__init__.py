"""OAuth 2.0, one concern a module:

- ``authorize``: state, PKCE (RFC 7636) and the authorization URL (RFC 6749 §4.1.1);
- ``tokens``: token responses (RFC 6749 §5.1 / §5.2) and client authentication (§2.3.1);
- ``calls``: the token, refresh and revocation requests (RFC 7009), bounded in time and size;
- ``refresh``: single-flight refresh across processes, and revocation of an account's tokens;
- ``discovery``: authorization server metadata (RFC 8414, OpenID Connect Discovery);
- ``client_app``: the OAuth app (client id and secret) an auth config connects through.

Authlib owns the protocol; toolauth uses its I/O-free parts and makes the HTTP calls itself,
so the public HTTP type stays ``httpx``.
"""
