-- 0005_scoped_reconcile: indexes for the reconciler's scoped passes, which
-- load only the grantees a few changed users can affect (store/recon.h,
-- recon_scope_load): grants by a subscription they serve, the grants left
-- without their first subscription at a data source's prefix, an
-- integration's grants of some grantees, users by explicit principal.
-- fastupdate off: a pending list (bulk creates fill it) is scanned whole by
-- every lookup until vacuum merges it (~3 ms a probe at 100,000 grants).
CREATE INDEX grants_subscription_ids_idx ON s3grant.grants USING gin (subscription_ids) WITH (fastupdate = off);
CREATE INDEX grants_unserved_idx ON s3grant.grants (integration_id, sub_prefix) WHERE subscription_id IS NULL;
CREATE INDEX grants_integration_grantee_idx ON s3grant.grants (integration_id, grantee_id);
CREATE INDEX users_principal_idx ON s3grant.users (principal) WHERE principal IS NOT NULL;
-- deleting a subscription sets grants.subscription_id NULL (ON DELETE SET
-- NULL): without an index each deleted row scans every grant
CREATE INDEX grants_subscription_idx ON s3grant.grants (subscription_id);
-- an integration's intents of some grantees: a bulk create leaves ~100,000
-- dead intents that a scan by integration reads until vacuum
CREATE INDEX grant_intents_integration_grantee_idx ON s3grant.grant_intents (integration_id, grantee_id);
