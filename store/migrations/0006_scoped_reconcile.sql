-- 0006_scoped_reconcile: indexes for the reconciler's scoped passes, which
-- load only the grantees a few changed users can affect (store/recon.h,
-- recon_scope_load): grants by their first subscription, the grants left
-- without it at a data source's prefix, an integration's grants and intents
-- of some grantees, users by explicit principal.
-- grants_subscription_idx also serves ON DELETE SET NULL: without it each
-- deleted subscription scans every grant.
CREATE INDEX grants_subscription_idx ON s3grant.grants (subscription_id);
CREATE INDEX grants_unserved_idx ON s3grant.grants (integration_id, sub_prefix) WHERE subscription_id IS NULL;
CREATE INDEX grants_integration_grantee_idx ON s3grant.grants (integration_id, grantee_id);
-- a bulk create leaves ~100,000 dead intents that a scan by integration reads until vacuum
CREATE INDEX grant_intents_integration_grantee_idx ON s3grant.grant_intents (integration_id, grantee_id);
CREATE INDEX users_principal_idx ON s3grant.users (principal) WHERE principal IS NOT NULL;
