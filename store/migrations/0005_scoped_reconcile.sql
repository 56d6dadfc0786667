-- 0005_scoped_reconcile: indexes for the reconciler's scoped passes, which
-- load only the grantees a few changed users can affect (store/recon.h,
-- recon_scope_load): a user's grants by the subscriptions they serve, the
-- grants left without their first subscription at a data source's prefix,
-- an integration's grants of some grantees, users by explicit principal.
CREATE INDEX grants_subscription_ids_idx ON s3grant.grants USING gin (subscription_ids);
CREATE INDEX grants_unserved_idx ON s3grant.grants (integration_id, sub_prefix) WHERE subscription_id IS NULL;
CREATE INDEX grants_integration_grantee_idx ON s3grant.grants (integration_id, grantee_id);
CREATE INDEX users_principal_idx ON s3grant.users (principal) WHERE principal IS NOT NULL;
