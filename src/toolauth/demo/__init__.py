"""The offline demo: a local OAuth 2.0 provider (``toolauth.demo.provider``) and its helpers.

Import the parts by path; this package imports nothing by itself.
"""
