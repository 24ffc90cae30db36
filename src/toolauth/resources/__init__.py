"""What the client manages, one module a resource: auth configs, connected accounts (and the
connection requests ``link()`` returns, and waiting for them), toolkits, sessions, and the HTTP
clients signed as an account. Each manager receives the collaborators it uses (store opener,
settings, catalog, HTTP pool, token manager) from :class:`toolauth.AsyncToolAuth`."""
