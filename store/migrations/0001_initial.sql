-- 0001_initial: the s3grant schema — tables, product-rule validation.
-- Every rule violation raises SQLSTATE 23514 (check_violation) or 23505
-- (unique_violation) with a message "<column>: <what is wrong>" and the
-- column and constraint names in the error fields.

CREATE TABLE s3grant.tenant (
	singleton boolean PRIMARY KEY DEFAULT true CONSTRAINT tenant_singleton CHECK (singleton),
	id uuid NOT NULL DEFAULT gen_random_uuid(),
	created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO s3grant.tenant DEFAULT VALUES;

CREATE TYPE s3grant.integration_status AS ENUM (
	'creating', 'enabled', 'editing', 'deleting', 'deleted', 'disabled',
	'createError', 'editError', 'deleteError', 'recurringValidationError');

CREATE FUNCTION s3grant.fail(p_table text, p_column text, p_constraint text, p_msg text,
			     p_errcode text DEFAULT 'check_violation')
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION USING MESSAGE = p_column || ': ' || p_msg, ERRCODE = p_errcode,
		SCHEMA = 's3grant', TABLE = p_table, COLUMN = p_column, CONSTRAINT = p_constraint;
END $$;

-- A relative S3 path: no leading or trailing slash, no empty, "." or ".."
-- segments, no control characters, no wildcard. Returns the normalised
-- path (one leading and one trailing slash are dropped) or raises.
CREATE FUNCTION s3grant.normalise_path(p_table text, p_column text, p_path text)
RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	p text := p_path;
BEGIN
	IF left(p, 1) = '/' THEN p := substr(p, 2); END IF;
	IF right(p, 1) = '/' THEN p := left(p, -1); END IF;
	IF p ~ '[[:cntrl:]]' THEN
		PERFORM s3grant.fail(p_table, p_column, p_table || '_' || p_column || '_chars',
			format('%L contains a control character', p_path));
	END IF;
	IF p ~ '^/|/$|//' THEN
		PERFORM s3grant.fail(p_table, p_column, p_table || '_' || p_column || '_segments',
			format('%L has an empty path segment', p_path));
	END IF;
	IF p ~ '(^|/)\.\.?(/|$)' THEN
		PERFORM s3grant.fail(p_table, p_column, p_table || '_' || p_column || '_dots',
			format('%L has a "." or ".." segment', p_path));
	END IF;
	IF strpos(p, '*') > 0 THEN
		PERFORM s3grant.fail(p_table, p_column, p_table || '_' || p_column || '_wildcard',
			format('%L contains "*" (grants add the wildcard themselves)', p_path));
	END IF;
	IF octet_length(p) > 1024 THEN
		PERFORM s3grant.fail(p_table, p_column, p_table || '_' || p_column || '_length',
			'is longer than 1024 bytes');
	END IF;
	RETURN p;
END $$;

CREATE FUNCTION s3grant.check_bucket(p_table text, p_column text, p_bucket text)
RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	IF p_bucket !~ '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$' OR p_bucket ~ '\.\.' THEN
		PERFORM s3grant.fail(p_table, p_column, p_table || '_' || p_column || '_bucket',
			format('%L is not a valid S3 bucket name', p_bucket));
	END IF;
END $$;

CREATE TABLE s3grant.integrations (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name text NOT NULL,
	aws_account_id text NOT NULL,
	aws_region text NOT NULL,
	location_role_arn text NOT NULL,
	location_path text NOT NULL,            -- "s3://" or "s3://bucket[/prefix]", no trailing slash
	authentication_type text NOT NULL DEFAULT 'auto',
	access_key_id text,
	secret_access_key bytea,                -- AES-256-GCM envelope (store/secrets.h), never plaintext
	role_to_assume text,
	external_id text,                       -- NULL: the tenant id
	role_session_name text,
	status s3grant.integration_status NOT NULL DEFAULT 'creating',
	status_message text,
	validation_results jsonb,
	location_id text,
	location_arn text,
	instance_arn text,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	validated_at timestamptz
);
CREATE UNIQUE INDEX integrations_name_key ON s3grant.integrations (name) WHERE status <> 'deleted';
CREATE UNIQUE INDEX integrations_location_path_key ON s3grant.integrations (location_path) WHERE status <> 'deleted';

CREATE FUNCTION s3grant.integrations_validate() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	t text := 'integrations';
	rest text;
BEGIN
	IF btrim(coalesce(NEW.name, '')) = '' OR NEW.name ~ '[[:cntrl:]]' OR length(NEW.name) > 256 THEN
		PERFORM s3grant.fail(t, 'name', 'integrations_name_check',
			'must be 1 to 256 printable characters');
	END IF;
	IF NEW.aws_account_id !~ '^[0-9]{1,12}$' THEN
		PERFORM s3grant.fail(t, 'aws_account_id', 'integrations_aws_account_id_check',
			format('%L is not an AWS account id (digits)', NEW.aws_account_id));
	END IF;
	IF NEW.aws_region !~ '^[a-z]{2}(-[a-z]+)+-[0-9]+$' THEN
		PERFORM s3grant.fail(t, 'aws_region', 'integrations_aws_region_check',
			format('%L is not an AWS region name such as us-east-1', NEW.aws_region));
	END IF;
	IF btrim(NEW.location_role_arn) = '' THEN
		PERFORM s3grant.fail(t, 'location_role_arn', 'integrations_location_role_arn_check',
			'must not be empty');
	END IF;
	IF NEW.location_path IS NULL OR left(NEW.location_path, 5) <> 's3://' THEN
		PERFORM s3grant.fail(t, 'location_path', 'integrations_location_path_scheme',
			format('%L must start with s3://', NEW.location_path));
	END IF;
	rest := substr(NEW.location_path, 6);
	IF rest <> '' THEN
		rest := s3grant.normalise_path(t, 'location_path', rest);
		PERFORM s3grant.check_bucket(t, 'location_path', split_part(rest, '/', 1));
		NEW.location_path := 's3://' || rest;
	END IF;
	IF NEW.authentication_type NOT IN ('accessKey', 'auto') THEN
		PERFORM s3grant.fail(t, 'authentication_type', 'integrations_authentication_type_check',
			format('%L must be accessKey or auto', NEW.authentication_type));
	END IF;
	IF NEW.authentication_type = 'accessKey' THEN
		IF coalesce(NEW.access_key_id, '') !~ '^[A-Za-z0-9]{1,128}$' THEN
			PERFORM s3grant.fail(t, 'access_key_id', 'integrations_access_key_id_check',
				'must be an access key id when authentication_type is accessKey');
		END IF;
		IF NEW.secret_access_key IS NULL THEN
			PERFORM s3grant.fail(t, 'secret_access_key', 'integrations_secret_access_key_check',
				'is required when authentication_type is accessKey');
		END IF;
	ELSIF NEW.access_key_id IS NOT NULL OR NEW.secret_access_key IS NOT NULL THEN
		PERFORM s3grant.fail(t, 'access_key_id', 'integrations_access_key_id_auto',
			'must be empty when authentication_type is auto');
	END IF;
	IF NEW.secret_access_key IS NOT NULL AND (get_byte(NEW.secret_access_key, 0) <> 1
	    OR octet_length(NEW.secret_access_key) < 1 + 4 + 12 + 16) THEN
		PERFORM s3grant.fail(t, 'secret_access_key', 'integrations_secret_access_key_envelope',
			'must be an encrypted envelope (version 1), never plaintext');
	END IF;
	IF NEW.role_to_assume IS NOT NULL AND NEW.role_to_assume
	    !~ '^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role(/[A-Za-z0-9+=,.@_-]+)*/[A-Za-z0-9+=,.@_-]{1,64}$' THEN
		PERFORM s3grant.fail(t, 'role_to_assume', 'integrations_role_to_assume_check',
			format('%L is not an IAM role ARN', NEW.role_to_assume));
	END IF;
	IF TG_OP = 'UPDATE' THEN
		IF NEW.aws_account_id <> OLD.aws_account_id OR NEW.aws_region <> OLD.aws_region
		   OR NEW.location_role_arn <> OLD.location_role_arn
		   OR NEW.location_path <> OLD.location_path
		   OR NEW.role_to_assume IS DISTINCT FROM OLD.role_to_assume THEN
			PERFORM s3grant.fail(t, 'location_path', 'integrations_immutable',
				'only name and the authentication fields of an integration may change');
		END IF;
		NEW.updated_at := now();
	END IF;
	IF EXISTS (SELECT 1 FROM s3grant.integrations i WHERE i.name = NEW.name
		   AND i.id <> NEW.id AND i.status <> 'deleted') AND NEW.status <> 'deleted' THEN
		PERFORM s3grant.fail(t, 'name', 'integrations_name_key',
			format('an integration named %L already exists', NEW.name), 'unique_violation');
	END IF;
	IF EXISTS (SELECT 1 FROM s3grant.integrations i WHERE i.location_path = NEW.location_path
		   AND i.id <> NEW.id AND i.status <> 'deleted') AND NEW.status <> 'deleted' THEN
		PERFORM s3grant.fail(t, 'location_path', 'integrations_location_path_key',
			format('an integration already uses the location path %L', NEW.location_path),
			'unique_violation');
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER integrations_validate BEFORE INSERT OR UPDATE ON s3grant.integrations
	FOR EACH ROW EXECUTE FUNCTION s3grant.integrations_validate();

CREATE TABLE s3grant.data_sources (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	integration_id bigint NOT NULL REFERENCES s3grant.integrations (id) ON DELETE CASCADE,
	prefix text NOT NULL,                   -- relative to the location scope, normalised
	name text,
	created_at timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT data_sources_prefix_key UNIQUE (integration_id, prefix)
);

CREATE FUNCTION s3grant.data_sources_validate() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	t text := 'data_sources';
	loc text;
	p text := NEW.prefix;
BEGIN
	SELECT location_path INTO loc FROM s3grant.integrations WHERE id = NEW.integration_id;
	IF loc IS NULL THEN
		PERFORM s3grant.fail(t, 'integration_id', 'data_sources_integration_id_fkey',
			format('integration %s does not exist', NEW.integration_id), 'foreign_key_violation');
	END IF;
	IF p IS NULL THEN
		PERFORM s3grant.fail(t, 'prefix', 'data_sources_prefix_check', 'must not be null');
	END IF;
	IF left(p, 5) = 's3://' THEN
		IF loc = 's3://' THEN
			p := substr(p, 6);
		ELSIF p = loc OR left(p, length(loc) + 1) = loc || '/' THEN
			p := substr(p, length(loc) + 1);
		ELSE
			PERFORM s3grant.fail(t, 'prefix', 'data_sources_prefix_scope',
				format('%L is outside the location scope %s', NEW.prefix, loc));
		END IF;
	END IF;
	p := s3grant.normalise_path(t, 'prefix', p);
	IF loc = 's3://' THEN
		IF p = '' THEN
			PERFORM s3grant.fail(t, 'prefix', 'data_sources_prefix_bucket',
				'must name a bucket when the location scope is s3://');
		END IF;
		PERFORM s3grant.check_bucket(t, 'prefix', split_part(p, '/', 1));
	END IF;
	NEW.prefix := p;
	RETURN NEW;
END $$;
CREATE TRIGGER data_sources_validate BEFORE INSERT OR UPDATE ON s3grant.data_sources
	FOR EACH ROW EXECUTE FUNCTION s3grant.data_sources_validate();

CREATE TABLE s3grant.users (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	username text NOT NULL CONSTRAINT users_username_key UNIQUE,
	principal text,                         -- NULL: the IAM user of the same name
	principal_type text,                    -- derived: iam_user | iam_role | directory_user
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_role_principal_key ON s3grant.users (principal) WHERE principal_type = 'iam_role';

CREATE FUNCTION s3grant.users_validate() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	t text := 'users';
	arn_tail text := ':iam::[0-9]{12}:%s(/[A-Za-z0-9+=,.@_-]+)*/[A-Za-z0-9+=,.@_-]{1,64}$';
BEGIN
	IF btrim(coalesce(NEW.username, '')) = '' OR NEW.username ~ '[[:cntrl:]]' OR length(NEW.username) > 256 THEN
		PERFORM s3grant.fail(t, 'username', 'users_username_check',
			'must be 1 to 256 printable characters');
	END IF;
	IF NEW.principal = '' THEN NEW.principal := NULL; END IF;
	IF NEW.principal IS NULL THEN
		NEW.principal_type := NULL;
	ELSIF NEW.principal ~ ('^arn:aws(-[a-z]+)*' || format(arn_tail, 'user')) THEN
		NEW.principal_type := 'iam_user';
	ELSIF NEW.principal ~ ('^arn:aws(-[a-z]+)*' || format(arn_tail, 'role')) THEN
		NEW.principal_type := 'iam_role';
	ELSIF NEW.principal ~ '^([0-9a-f]{10}-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
		NEW.principal_type := 'directory_user';
	ELSE
		PERFORM s3grant.fail(t, 'principal', 'users_principal_check',
			format('%L is not an IAM user ARN (arn:aws:iam::<12 digits>:user/NAME), an IAM role ARN '
			       '(arn:aws:iam::<12 digits>:role/NAME) or an Identity Center user id', NEW.principal));
	END IF;
	IF NEW.principal_type = 'iam_role' AND EXISTS (SELECT 1 FROM s3grant.users u
	    WHERE u.principal = NEW.principal AND u.principal_type = 'iam_role' AND u.id <> NEW.id) THEN
		PERFORM s3grant.fail(t, 'principal', 'users_role_principal_key',
			format('the IAM role %s already maps to another user (one user per role)', NEW.principal),
			'unique_violation');
	END IF;
	IF TG_OP = 'UPDATE' THEN NEW.updated_at := now(); END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER users_validate BEFORE INSERT OR UPDATE ON s3grant.users
	FOR EACH ROW EXECUTE FUNCTION s3grant.users_validate();

CREATE TABLE s3grant.subscriptions (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_id bigint NOT NULL REFERENCES s3grant.users (id) ON DELETE CASCADE,
	data_source_id bigint NOT NULL REFERENCES s3grant.data_sources (id) ON DELETE CASCADE,
	access text NOT NULL,
	status text NOT NULL DEFAULT 'pending'
		CONSTRAINT subscriptions_status_check CHECK (status IN ('pending', 'active', 'error')),
	error text,                             -- the daemon's last error for this row
	error_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT subscriptions_user_data_source_key UNIQUE (user_id, data_source_id)
);
CREATE INDEX subscriptions_data_source_idx ON s3grant.subscriptions (data_source_id);

CREATE FUNCTION s3grant.subscriptions_validate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.access IS NULL OR NEW.access NOT IN ('read', 'write') THEN
		PERFORM s3grant.fail('subscriptions', 'access', 'subscriptions_access_check',
			format('%L must be read or write', NEW.access));
	END IF;
	IF TG_OP = 'UPDATE' THEN NEW.updated_at := now(); END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER subscriptions_validate BEFORE INSERT OR UPDATE ON s3grant.subscriptions
	FOR EACH ROW EXECUTE FUNCTION s3grant.subscriptions_validate();

-- Grants as s3grantd last saw them in AWS (written by the daemon only).
CREATE TABLE s3grant.grants (
	grant_id text PRIMARY KEY,
	integration_id bigint NOT NULL REFERENCES s3grant.integrations (id) ON DELETE CASCADE,
	grant_arn text NOT NULL,
	grantee_type text NOT NULL
		CONSTRAINT grants_grantee_type_check CHECK (grantee_type IN ('IAM', 'DIRECTORY_USER', 'DIRECTORY_GROUP')),
	grantee_id text NOT NULL,
	permission text NOT NULL
		CONSTRAINT grants_permission_check CHECK (permission IN ('READ', 'WRITE', 'READWRITE')),
	location_id text NOT NULL,
	sub_prefix text NOT NULL DEFAULT '',
	grant_scope text,
	subscription_id bigint REFERENCES s3grant.subscriptions (id) ON DELETE SET NULL,
	created_at timestamptz,
	seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX grants_integration_idx ON s3grant.grants (integration_id);

-- Written before a CreateAccessGrant is sent; removed once the grant is recorded.
CREATE TABLE s3grant.grant_intents (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	integration_id bigint NOT NULL REFERENCES s3grant.integrations (id) ON DELETE CASCADE,
	subscription_id bigint REFERENCES s3grant.subscriptions (id) ON DELETE SET NULL,
	grantee_type text NOT NULL,
	grantee_id text NOT NULL,
	permission text NOT NULL,
	location_id text NOT NULL,
	sub_prefix text NOT NULL DEFAULT '',
	created_at timestamptz NOT NULL DEFAULT now(),
	sent_at timestamptz,
	grant_id text
);
CREATE INDEX grant_intents_integration_idx ON s3grant.grant_intents (integration_id);

CREATE TABLE s3grant.export_config (
	singleton boolean PRIMARY KEY DEFAULT true CONSTRAINT export_config_singleton CHECK (singleton),
	enabled boolean NOT NULL DEFAULT true,
	bucket text NOT NULL,
	region text NOT NULL,
	path text NOT NULL DEFAULT '',
	authentication_type text NOT NULL DEFAULT 'auto'
		CONSTRAINT export_config_authentication_type_check
		CHECK (authentication_type IN ('accessKey', 'auto', 'assumeRole')),
	access_key_id text,
	secret_access_key bytea,                -- AES-256-GCM envelope
	role_arn text,
	external_id text,                       -- NULL: the tenant id
	kms_key_arn text,
	time_of_day time NOT NULL DEFAULT '03:00',
	time_zone text NOT NULL DEFAULT 'UTC',
	updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE s3grant.exports (
	local_day date PRIMARY KEY,             -- one export per local day
	status text NOT NULL DEFAULT 'pending'
		CONSTRAINT exports_status_check CHECK (status IN ('pending', 'running', 'done', 'failed')),
	object_key text,
	row_count bigint,
	error text,
	attempts int NOT NULL DEFAULT 0,
	started_at timestamptz,
	finished_at timestamptz
);

CREATE TABLE s3grant.audit_log (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at timestamptz NOT NULL DEFAULT now(),
	integration_id bigint,
	operation text NOT NULL,                -- create | delete | adopt | repair-create | repair-delete | ...
	grant_id text,
	grant_arn text,
	principal text,
	prefix text,
	permission text,
	reason text,
	aws_request_id text
);
CREATE INDEX audit_log_at_idx ON s3grant.audit_log (at);
