"""Per-scheme auth: how stored credentials go onto a request, and how key forms are checked.

OAuth 2.0's protocol steps live in :mod:`toolauth.oauth`; this package applies what they
produce (and what users type into key forms) to outgoing requests.
"""
