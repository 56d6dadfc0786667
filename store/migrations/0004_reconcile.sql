-- 0004_reconcile: what the reconciler records — grants with the subscriptions
-- they serve, one intent per canonical grant key, per-integration health,
-- per-subscription outcomes, and the previous configuration of an
-- integration under edit (restored on editError).

-- grants: every subscription the grant serves (make-before-break needs one
-- that still exists after others are removed). subscription_id stays the first.
ALTER TABLE s3grant.grants ADD COLUMN subscription_ids bigint[];
UPDATE s3grant.grants SET subscription_ids = ARRAY[subscription_id] WHERE subscription_id IS NOT NULL;
CREATE INDEX grants_integration_location_idx ON s3grant.grants (integration_id, location_id);

-- grant_intents: one intent per canonical key of an integration. The key can
-- be ~4 KB (ARN + sub-prefix), beyond a btree entry, so it is hashed.
DELETE FROM s3grant.grant_intents a USING s3grant.grant_intents b
 WHERE a.integration_id = b.integration_id AND a.id > b.id AND a.grantee_type = b.grantee_type
   AND a.grantee_id = b.grantee_id AND a.permission = b.permission
   AND a.location_id = b.location_id AND a.sub_prefix = b.sub_prefix;
ALTER TABLE s3grant.grant_intents
	ADD COLUMN key_md5 text GENERATED ALWAYS AS (md5(location_id || E'\x1f' || grantee_type || E'\x1f' ||
		grantee_id || E'\x1f' || permission || E'\x1f' || sub_prefix)) STORED,
	ADD COLUMN subscription_ids bigint[],
	ADD COLUMN attempts int NOT NULL DEFAULT 1;
CREATE UNIQUE INDEX grant_intents_key ON s3grant.grant_intents (integration_id, key_md5);

-- subscriptions: the daemon's outcome per row.
--   pending   not reconciled yet
--   active    its grant exists
--   rejected  the row cannot become a grant (bad principal, prefix, ...): fix the row
--   error     AWS refused for good (AccessDenied, ...): error says why
--   quota     refused: the instance's grant quota is full
ALTER TABLE s3grant.subscriptions DROP CONSTRAINT subscriptions_status_check;
ALTER TABLE s3grant.subscriptions ADD CONSTRAINT subscriptions_status_check
	CHECK (status IN ('pending', 'active', 'rejected', 'error', 'quota'));
CREATE INDEX subscriptions_problem_idx ON s3grant.subscriptions (data_source_id)
	WHERE status IN ('rejected', 'error', 'quota');

-- Health of an integration as the daemon last reported it (one row each;
-- kept apart from integrations so health writes run no validation trigger).
CREATE TABLE s3grant.integration_health (
	integration_id bigint PRIMARY KEY REFERENCES s3grant.integrations (id) ON DELETE CASCADE,
	desired_count bigint,                   -- desired grants at the last reconcile
	actual_count bigint,                    -- grants in the managed location, last seen
	rejected_count bigint,                  -- subscriptions rejected
	error_count bigint,                     -- subscriptions in error or refused by quota
	instance_grants bigint,                 -- grants in the whole Access Grants instance (quota use)
	last_resync_at timestamptz,
	last_error text,
	last_error_at timestamptz,
	progress_done bigint,                   -- long work: done / total (NULL when idle)
	progress_total bigint,
	updated_at timestamptz NOT NULL DEFAULT now()
);

-- The configuration an edit replaced: set when status becomes 'editing',
-- restored by the daemon on editError, cleared when the edit succeeds.
ALTER TABLE s3grant.integrations ADD COLUMN previous_config jsonb,
	ADD COLUMN previous_secret bytea;

CREATE FUNCTION s3grant.integrations_remember() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.status = 'editing' AND OLD.status <> 'editing' THEN
		NEW.previous_config := jsonb_build_object('name', OLD.name,
			'authentication_type', OLD.authentication_type, 'access_key_id', OLD.access_key_id,
			'external_id', OLD.external_id, 'role_session_name', OLD.role_session_name,
			'status', OLD.status);
		NEW.previous_secret := OLD.secret_access_key;
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER integrations_remember BEFORE UPDATE ON s3grant.integrations
	FOR EACH ROW EXECUTE FUNCTION s3grant.integrations_remember();

-- The daemon marks a row it cannot use as rejected; a legacy row whose access
-- the trigger would refuse today must still take that status write.
CREATE OR REPLACE FUNCTION s3grant.subscriptions_validate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF (TG_OP = 'INSERT' OR NEW.access IS DISTINCT FROM OLD.access)
	   AND (NEW.access IS NULL OR NEW.access NOT IN ('read', 'write')) THEN
		PERFORM s3grant.fail('subscriptions', 'access', 'subscriptions_access_check',
			format('%L must be read or write', NEW.access));
	END IF;
	IF TG_OP = 'UPDATE' THEN NEW.updated_at := now(); END IF;
	RETURN NEW;
END $$;
