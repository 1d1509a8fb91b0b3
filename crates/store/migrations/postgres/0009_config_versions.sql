-- Every config the gateway has run: the file's text as written (before
-- ${VAR} interpolation, so no secret from the environment is stored), who
-- or what made it active, and why. Rollback activates an earlier text as a
-- new version.
CREATE TABLE config_versions (
    version    BIGINT PRIMARY KEY,
    created_at BIGINT NOT NULL,  -- unix ms
    actor      TEXT NOT NULL,     -- system | bootstrap | key id
    source     TEXT NOT NULL,     -- file | rollback | route-rollback
    text       TEXT NOT NULL
);
