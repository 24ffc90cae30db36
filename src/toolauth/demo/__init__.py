"""The offline demo: everything needed to try toolauth without an account anywhere.

- ``provider``: a real OAuth 2.0 authorization server with a small items API (the "Demo" app)
- ``github``: a fake of GitHub's REST API behind a simulated ``github`` toolkit
- ``local``: the provider on loopback, for scripts, examples and notebooks
- ``browser``: a scripted browser that plays the user on the provider's pages
- ``model``: the scripted chat model (or a real one from ``TOOLAUTH_DEMO_MODEL``)
- ``chat``, ``app``, ``run``: the chat demo behind ``toolauth demo``

Import the parts by path; this package imports nothing by itself.
"""
