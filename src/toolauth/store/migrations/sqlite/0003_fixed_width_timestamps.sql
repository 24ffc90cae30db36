-- toolauth schema 3 (SQLite): points in time as fixed-width UTC text,
-- 'YYYY-MM-DDTHH:MM:SS.ffffffZ', so comparing and sorting them as text is comparing and
-- sorting the times. Rows written before held datetime.isoformat() text: offsets other than
-- UTC (and naive times, read as UTC) compared wrongly. Each value is moved to UTC keeping its
-- microseconds (a six-digit fraction is carried over as text: SQLite's own clock keeps only
-- milliseconds); a value that is not a time at all is left as it was.

UPDATE encryption_keys SET created_at = COALESCE(CASE
    WHEN created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]*' THEN strftime('%Y-%m-%dT%H:%M:%S',
        substr(created_at, 1, 19) || substr(created_at, 27)) || '.' || substr(created_at, 21, 6) || 'Z'
    WHEN created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' THEN strftime('%Y-%m-%dT%H:%M:%f', created_at) || '000Z'
  END, created_at)
WHERE created_at IS NOT NULL;

UPDATE schema_migrations SET applied_at = COALESCE(CASE
    WHEN applied_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]*' THEN strftime('%Y-%m-%dT%H:%M:%S',
        substr(applied_at, 1, 19) || substr(applied_at, 27)) || '.' || substr(applied_at, 21, 6) || 'Z'
    WHEN applied_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' THEN strftime('%Y-%m-%dT%H:%M:%f', applied_at) || '000Z'
  END, applied_at)
WHERE applied_at IS NOT NULL;

UPDATE auth_configs SET created_at = COALESCE(CASE
    WHEN created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]*' THEN strftime('%Y-%m-%dT%H:%M:%S',
        substr(created_at, 1, 19) || substr(created_at, 27)) || '.' || substr(created_at, 21, 6) || 'Z'
    WHEN created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' THEN strftime('%Y-%m-%dT%H:%M:%f', created_at) || '000Z'
  END, created_at)
WHERE created_at IS NOT NULL;

UPDATE auth_configs SET updated_at = COALESCE(CASE
    WHEN updated_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]*' THEN strftime('%Y-%m-%dT%H:%M:%S',
        substr(updated_at, 1, 19) || substr(updated_at, 27)) || '.' || substr(updated_at, 21, 6) || 'Z'
    WHEN updated_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' THEN strftime('%Y-%m-%dT%H:%M:%f', updated_at) || '000Z'
  END, updated_at)
WHERE updated_at IS NOT NULL;

UPDATE connected_accounts SET expires_at = COALESCE(CASE
    WHEN expires_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]*' THEN strftime('%Y-%m-%dT%H:%M:%S',
        substr(expires_at, 1, 19) || substr(expires_at, 27)) || '.' || substr(expires_at, 21, 6) || 'Z'
    WHEN expires_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' THEN strftime('%Y-%m-%dT%H:%M:%f', expires_at) || '000Z'
  END, expires_at)
WHERE expires_at IS NOT NULL;

UPDATE connected_accounts SET refresh_lease_until = COALESCE(CASE
    WHEN refresh_lease_until GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]*' THEN strftime('%Y-%m-%dT%H:%M:%S',
        substr(refresh_lease_until, 1, 19) || substr(refresh_lease_until, 27)) || '.' || substr(refresh_lease_until, 21, 6) || 'Z'
    WHEN refresh_lease_until GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' THEN strftime('%Y-%m-%dT%H:%M:%f', refresh_lease_until) || '000Z'
  END, refresh_lease_until)
WHERE refresh_lease_until IS NOT NULL;

UPDATE connected_accounts SET created_at = COALESCE(CASE
    WHEN created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]*' THEN strftime('%Y-%m-%dT%H:%M:%S',
        substr(created_at, 1, 19) || substr(created_at, 27)) || '.' || substr(created_at, 21, 6) || 'Z'
    WHEN created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' THEN strftime('%Y-%m-%dT%H:%M:%f', created_at) || '000Z'
  END, created_at)
WHERE created_at IS NOT NULL;

UPDATE connected_accounts SET updated_at = COALESCE(CASE
    WHEN updated_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]*' THEN strftime('%Y-%m-%dT%H:%M:%S',
        substr(updated_at, 1, 19) || substr(updated_at, 27)) || '.' || substr(updated_at, 21, 6) || 'Z'
    WHEN updated_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' THEN strftime('%Y-%m-%dT%H:%M:%f', updated_at) || '000Z'
  END, updated_at)
WHERE updated_at IS NOT NULL;

UPDATE connection_links SET expires_at = COALESCE(CASE
    WHEN expires_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]*' THEN strftime('%Y-%m-%dT%H:%M:%S',
        substr(expires_at, 1, 19) || substr(expires_at, 27)) || '.' || substr(expires_at, 21, 6) || 'Z'
    WHEN expires_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' THEN strftime('%Y-%m-%dT%H:%M:%f', expires_at) || '000Z'
  END, expires_at)
WHERE expires_at IS NOT NULL;

UPDATE connection_links SET completed_at = COALESCE(CASE
    WHEN completed_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]*' THEN strftime('%Y-%m-%dT%H:%M:%S',
        substr(completed_at, 1, 19) || substr(completed_at, 27)) || '.' || substr(completed_at, 21, 6) || 'Z'
    WHEN completed_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' THEN strftime('%Y-%m-%dT%H:%M:%f', completed_at) || '000Z'
  END, completed_at)
WHERE completed_at IS NOT NULL;

UPDATE connection_links SET created_at = COALESCE(CASE
    WHEN created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]*' THEN strftime('%Y-%m-%dT%H:%M:%S',
        substr(created_at, 1, 19) || substr(created_at, 27)) || '.' || substr(created_at, 21, 6) || 'Z'
    WHEN created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' THEN strftime('%Y-%m-%dT%H:%M:%f', created_at) || '000Z'
  END, created_at)
WHERE created_at IS NOT NULL;

UPDATE connection_links SET updated_at = COALESCE(CASE
    WHEN updated_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]*' THEN strftime('%Y-%m-%dT%H:%M:%S',
        substr(updated_at, 1, 19) || substr(updated_at, 27)) || '.' || substr(updated_at, 21, 6) || 'Z'
    WHEN updated_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' THEN strftime('%Y-%m-%dT%H:%M:%f', updated_at) || '000Z'
  END, updated_at)
WHERE updated_at IS NOT NULL;
