-- 0003_export: the access summary export — config validation, one export
-- per local day (claim/lease/retry), on-demand requests.
-- Times the daemon compares (leases, retries) are passed in by the caller
-- (p_now) so the daemon's injectable clock decides, not the server's.

-- export_config: time_of_day / time_zone NULL = the daemon's [export] keys.
ALTER TABLE s3grant.export_config ALTER COLUMN time_of_day DROP NOT NULL,
	ALTER COLUMN time_of_day DROP DEFAULT,
	ALTER COLUMN time_zone DROP NOT NULL,
	ALTER COLUMN time_zone DROP DEFAULT;
UPDATE s3grant.export_config SET time_zone = NULL WHERE time_zone = 'UTC';

CREATE FUNCTION s3grant.export_config_validate() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	t text := 'export_config';
BEGIN
	PERFORM s3grant.check_bucket(t, 'bucket', coalesce(NEW.bucket, ''));
	IF coalesce(NEW.region, '') !~ '^[a-z]{2}(-[a-z]+)+-[0-9]+$' THEN
		PERFORM s3grant.fail(t, 'region', 'export_config_region_check',
			format('%L is not an AWS region name such as us-east-1', NEW.region));
	END IF;
	NEW.path := coalesce(NEW.path, '');
	IF NEW.path <> '' THEN
		NEW.path := s3grant.normalise_path(t, 'path', NEW.path);
	END IF;
	IF NEW.authentication_type = 'accessKey' THEN
		IF coalesce(NEW.access_key_id, '') !~ '^[A-Za-z0-9]{16,128}$' THEN
			PERFORM s3grant.fail(t, 'access_key_id', 'export_config_access_key_id_check',
				'must be an access key id (16 to 128 letters and digits)');
		END IF;
		IF NEW.secret_access_key IS NULL THEN
			PERFORM s3grant.fail(t, 'secret_access_key', 'export_config_secret_access_key_check',
				'is required with an access key id');
		END IF;
		IF NEW.role_arn IS NOT NULL THEN
			PERFORM s3grant.fail(t, 'role_arn', 'export_config_auth_exclusive',
				'give either an access key or a role ARN, not both');
		END IF;
	ELSIF NEW.authentication_type = 'assumeRole' THEN
		IF NEW.access_key_id IS NOT NULL OR NEW.secret_access_key IS NOT NULL THEN
			PERFORM s3grant.fail(t, 'access_key_id', 'export_config_auth_exclusive',
				'give either an access key or a role ARN, not both');
		END IF;
	ELSIF NEW.access_key_id IS NOT NULL OR NEW.secret_access_key IS NOT NULL THEN
		PERFORM s3grant.fail(t, 'access_key_id', 'export_config_access_key_id_auto',
			'must be empty when authentication_type is auto');
	END IF;
	IF NEW.authentication_type = 'assumeRole' AND NEW.role_arn IS NULL THEN
		PERFORM s3grant.fail(t, 'role_arn', 'export_config_role_arn_check',
			'is required when authentication_type is assumeRole');
	END IF;
	IF NEW.role_arn IS NOT NULL AND NEW.role_arn
	    !~ '^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role(/[A-Za-z0-9+=,.@_-]+)*/[A-Za-z0-9+=,.@_-]{1,64}$' THEN
		PERFORM s3grant.fail(t, 'role_arn', 'export_config_role_arn_check',
			format('%L is not an IAM role ARN (arn:aws:iam::<12 digits>:role/NAME)', NEW.role_arn));
	END IF;
	IF NEW.secret_access_key IS NOT NULL AND (get_byte(NEW.secret_access_key, 0) <> 1
	    OR octet_length(NEW.secret_access_key) < 1 + 4 + 12 + 16) THEN
		PERFORM s3grant.fail(t, 'secret_access_key', 'export_config_secret_access_key_envelope',
			'must be an encrypted envelope (version 1), never plaintext');
	END IF;
	IF NEW.kms_key_arn IS NOT NULL AND NEW.kms_key_arn !~
	    '^(arn:aws(-[a-z]+)*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/[A-Za-z0-9/_+=,.@-]+|alias/[A-Za-z0-9/_-]+|(mrk-)?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}|mrk-[0-9a-f]{32})$' THEN
		PERFORM s3grant.fail(t, 'kms_key_arn', 'export_config_kms_key_check',
			format('%L is not a KMS key id, key ARN or alias', NEW.kms_key_arn));
	END IF;
	IF NEW.time_zone = '' THEN NEW.time_zone := NULL; END IF;
	IF NEW.time_zone IS NOT NULL AND (NEW.time_zone !~ '^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$'
	    OR length(NEW.time_zone) > 64) THEN
		PERFORM s3grant.fail(t, 'time_zone', 'export_config_time_zone_check',
			format('%L is not an IANA time zone name such as Europe/Berlin', NEW.time_zone));
	END IF;
	NEW.updated_at := now();
	RETURN NEW;
END $$;
CREATE TRIGGER export_config_validate BEFORE INSERT OR UPDATE ON s3grant.export_config
	FOR EACH ROW EXECUTE FUNCTION s3grant.export_config_validate();

CREATE FUNCTION s3grant.export_config_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('s3grant_export', 'config');
	RETURN NULL;
END $$;
CREATE TRIGGER export_config_changed AFTER INSERT OR UPDATE OR DELETE ON s3grant.export_config
	FOR EACH STATEMENT EXECUTE FUNCTION s3grant.export_config_changed();

-- exports: one 'schedule' row per local day, any number of 'manual' rows
-- (s3grantctl export run), column kind. A manual row is 'pending' until a daemon claims
-- it (its local_day is set then).
ALTER TABLE s3grant.exports DROP CONSTRAINT exports_pkey;
ALTER TABLE s3grant.exports DROP CONSTRAINT exports_status_check;
UPDATE s3grant.exports SET status = 'succeeded' WHERE status = 'done';
ALTER TABLE s3grant.exports
	ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	ADD COLUMN kind text NOT NULL DEFAULT 'schedule'
		CONSTRAINT exports_kind_check CHECK (kind IN ('schedule', 'manual')),
	ADD COLUMN requested_at timestamptz NOT NULL DEFAULT now(),
	ADD COLUMN requested_by text,
	ADD COLUMN claimed_by text,             -- daemon instance holding the lease
	ADD COLUMN lease_until timestamptz,     -- a running row past this may be taken over
	ADD COLUMN next_retry_at timestamptz,   -- failed: when to try again; NULL = gave up
	ADD COLUMN manifest_key text,
	ADD COLUMN objects jsonb,               -- [{name, key, rows, bytes, sha256}]
	ALTER COLUMN local_day DROP NOT NULL,
	ADD CONSTRAINT exports_status_check
		CHECK (status IN ('pending', 'running', 'succeeded', 'failed')),
	ADD CONSTRAINT exports_day_check CHECK (local_day IS NOT NULL OR (kind = 'manual' AND status = 'pending'));
COMMENT ON COLUMN s3grant.exports.object_key IS 'key prefix of the export''s objects';
COMMENT ON COLUMN s3grant.exports.row_count IS 'grant records exported';
CREATE UNIQUE INDEX exports_schedule_day_key ON s3grant.exports (local_day) WHERE kind = 'schedule';
CREATE INDEX exports_pending_idx ON s3grant.exports (id) WHERE status = 'pending';

-- Claim the scheduled export of p_day: create it, or take over a failed row
-- whose retry time has come, or a running row whose lease expired. Returns
-- (id, attempts) when claimed, no row otherwise.
CREATE FUNCTION s3grant.claim_export_day(p_day date, p_who text, p_now timestamptz, p_lease_ms bigint)
RETURNS TABLE (id bigint, attempts int) LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY INSERT INTO s3grant.exports AS e (local_day, kind, status, attempts, started_at,
			claimed_by, lease_until, requested_at)
		VALUES (p_day, 'schedule', 'running', 1, p_now, p_who,
			p_now + p_lease_ms * interval '1 millisecond', p_now)
		ON CONFLICT (local_day) WHERE kind = 'schedule' DO NOTHING
		RETURNING e.id, e.attempts;
	IF FOUND THEN RETURN; END IF;
	RETURN QUERY UPDATE s3grant.exports AS e
		SET status = 'running', attempts = e.attempts + 1, started_at = p_now, finished_at = NULL,
		    claimed_by = p_who, lease_until = p_now + p_lease_ms * interval '1 millisecond',
		    next_retry_at = NULL
		WHERE e.local_day = p_day AND e.kind = 'schedule'
		  AND ((e.status = 'failed' AND e.next_retry_at <= p_now)
		       OR (e.status = 'running' AND e.lease_until <= p_now))
		RETURNING e.id, e.attempts;
END $$;

-- Claim the oldest pending on-demand request (for p_day).
CREATE FUNCTION s3grant.claim_export_request(p_day date, p_who text, p_now timestamptz, p_lease_ms bigint)
RETURNS TABLE (id bigint, attempts int) LANGUAGE sql AS $$
	UPDATE s3grant.exports AS e
	   SET status = 'running', local_day = p_day, attempts = e.attempts + 1, started_at = p_now,
	       claimed_by = p_who, lease_until = p_now + p_lease_ms * interval '1 millisecond'
	 WHERE e.id = (SELECT r.id FROM s3grant.exports r WHERE r.status = 'pending'
			 ORDER BY r.id LIMIT 1 FOR UPDATE SKIP LOCKED)
	RETURNING e.id, e.attempts;
$$;

-- Record the outcome of a claimed export (only by its current claimant).
CREATE FUNCTION s3grant.finish_export(p_id bigint, p_who text, p_now timestamptz, p_ok boolean,
	p_error text, p_next_retry_at timestamptz, p_prefix text, p_manifest_key text,
	p_rows bigint, p_objects jsonb)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	UPDATE s3grant.exports AS e
	   SET status = CASE WHEN p_ok THEN 'succeeded' ELSE 'failed' END,
	       error = CASE WHEN p_ok THEN NULL ELSE p_error END,
	       next_retry_at = CASE WHEN p_ok THEN NULL ELSE p_next_retry_at END,
	       finished_at = p_now, lease_until = NULL,
	       object_key = coalesce(p_prefix, e.object_key),
	       manifest_key = coalesce(p_manifest_key, e.manifest_key),
	       row_count = coalesce(p_rows, e.row_count),
	       objects = coalesce(p_objects, e.objects)
	 WHERE e.id = p_id AND e.claimed_by = p_who AND e.status = 'running';
	RETURN FOUND;
END $$;

-- s3grantctl export run: a pending manual row, and a wake-up.
CREATE FUNCTION s3grant.request_export(p_who text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	rid bigint;
BEGIN
	INSERT INTO s3grant.exports (local_day, kind, status, requested_by)
	VALUES (NULL, 'manual', 'pending', p_who) RETURNING id INTO rid;
	PERFORM pg_notify('s3grant_export', 'run:' || rid);
	RETURN rid;
END $$;
