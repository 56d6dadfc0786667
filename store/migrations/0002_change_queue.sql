-- 0002_change_queue: the change queue, its triggers and the claim/ack functions.
-- One row per key: repeated changes to a key coalesce into that row (seq is
-- bumped, changes counted). A claim leases keys (locked_until/locked_by);
-- an ack deletes a key only if no change arrived since it was claimed.

CREATE SEQUENCE s3grant.change_seq;

CREATE TABLE s3grant.change_queue (
	key text PRIMARY KEY,                   -- i:<iid> | d:<iid>:<dsid> | u:<iid>:<uid> | s:<iid>:<uid>:<dsid>
	kind text NOT NULL
		CONSTRAINT change_queue_kind_check CHECK (kind IN ('integration', 'data_source', 'user', 'subscription')),
	integration_id bigint NOT NULL,
	seq bigint NOT NULL DEFAULT nextval('s3grant.change_seq'),
	changes bigint NOT NULL DEFAULT 1,      -- changes coalesced into this row
	enqueued_at timestamptz NOT NULL DEFAULT clock_timestamp(),
	last_enqueued_at timestamptz NOT NULL DEFAULT clock_timestamp(),
	locked_until timestamptz,
	locked_by text,
	attempts int NOT NULL DEFAULT 0
);
CREATE INDEX change_queue_ready_idx ON s3grant.change_queue (enqueued_at);

-- Append keys (coalescing) and notify once per integration, in the caller's transaction.
CREATE FUNCTION s3grant.enqueue(p_keys text[], p_kinds text[], p_iids bigint[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	iid bigint;
BEGIN
	INSERT INTO s3grant.change_queue AS q (key, kind, integration_id, changes)
	SELECT k, min(kd), min(i), count(*)
	  FROM unnest(p_keys, p_kinds, p_iids) AS c(k, kd, i)
	 WHERE k IS NOT NULL
	 GROUP BY k ORDER BY k
	ON CONFLICT (key) DO UPDATE
	   SET seq = nextval('s3grant.change_seq'), changes = q.changes + excluded.changes,
	       last_enqueued_at = clock_timestamp();
	FOR iid IN SELECT DISTINCT u FROM unnest(p_iids) AS u WHERE u IS NOT NULL LOOP
		PERFORM pg_notify('s3grant_changes', iid::text);
	END LOOP;
END $$;

CREATE FUNCTION s3grant.integrations_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'DELETE' THEN
		PERFORM s3grant.enqueue(ARRAY['i:' || OLD.id], ARRAY['integration'], ARRAY[OLD.id]);
		RETURN OLD;
	END IF;
	PERFORM s3grant.enqueue(ARRAY['i:' || NEW.id], ARRAY['integration'], ARRAY[NEW.id]);
	RETURN NEW;
END $$;
-- The daemon's own writes (status to enabled/error, validation results,
-- location id) do not enqueue: only configuration and user-driven status changes do.
CREATE TRIGGER integrations_changed_ins AFTER INSERT ON s3grant.integrations
	FOR EACH ROW EXECUTE FUNCTION s3grant.integrations_changed();
CREATE TRIGGER integrations_changed_upd AFTER UPDATE ON s3grant.integrations
	FOR EACH ROW WHEN (
		OLD.name IS DISTINCT FROM NEW.name
		OR OLD.authentication_type IS DISTINCT FROM NEW.authentication_type
		OR OLD.access_key_id IS DISTINCT FROM NEW.access_key_id
		OR OLD.secret_access_key IS DISTINCT FROM NEW.secret_access_key
		OR OLD.external_id IS DISTINCT FROM NEW.external_id
		OR OLD.role_session_name IS DISTINCT FROM NEW.role_session_name
		OR (OLD.status IS DISTINCT FROM NEW.status
		    AND NEW.status IN ('creating', 'editing', 'deleting', 'disabled')))
	EXECUTE FUNCTION s3grant.integrations_changed();
CREATE TRIGGER integrations_changed_del AFTER DELETE ON s3grant.integrations
	FOR EACH ROW EXECUTE FUNCTION s3grant.integrations_changed();

-- Statement-level triggers with transition tables: a bulk load of N rows is
-- one enqueue call, not N.
CREATE FUNCTION s3grant.data_sources_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	k text[]; kd text[]; i bigint[];
BEGIN
	IF TG_OP = 'INSERT' THEN
		SELECT array_agg('d:' || integration_id || ':' || id), array_agg('data_source'::text), array_agg(integration_id)
		  INTO k, kd, i FROM new_rows;
	ELSIF TG_OP = 'DELETE' THEN
		SELECT array_agg('d:' || integration_id || ':' || id), array_agg('data_source'::text), array_agg(integration_id)
		  INTO k, kd, i FROM old_rows;
	ELSE
		SELECT array_agg(x.key), array_agg('data_source'::text), array_agg(x.iid) INTO k, kd, i FROM (
			SELECT 'd:' || n.integration_id || ':' || n.id AS key, n.integration_id AS iid
			  FROM new_rows n JOIN old_rows o USING (id)
			 WHERE n.prefix IS DISTINCT FROM o.prefix OR n.integration_id <> o.integration_id
			UNION ALL
			SELECT 'd:' || o.integration_id || ':' || o.id, o.integration_id
			  FROM new_rows n JOIN old_rows o USING (id)
			 WHERE n.integration_id <> o.integration_id) x;
	END IF;
	IF k IS NOT NULL THEN PERFORM s3grant.enqueue(k, kd, i); END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER data_sources_changed_ins AFTER INSERT ON s3grant.data_sources
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION s3grant.data_sources_changed();
CREATE TRIGGER data_sources_changed_upd AFTER UPDATE ON s3grant.data_sources
	REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION s3grant.data_sources_changed();
CREATE TRIGGER data_sources_changed_del AFTER DELETE ON s3grant.data_sources
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION s3grant.data_sources_changed();

CREATE FUNCTION s3grant.subscriptions_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	k text[]; kd text[]; i bigint[];
BEGIN
	-- each branch names only the transition tables its event defines
	IF TG_OP = 'INSERT' THEN
		SELECT array_agg('s:' || d.integration_id || ':' || r.user_id || ':' || r.data_source_id),
		       array_agg('subscription'::text), array_agg(d.integration_id) INTO k, kd, i
		  FROM new_rows r JOIN s3grant.data_sources d ON d.id = r.data_source_id;
	ELSIF TG_OP = 'DELETE' THEN
		SELECT array_agg('s:' || d.integration_id || ':' || r.user_id || ':' || r.data_source_id),
		       array_agg('subscription'::text), array_agg(d.integration_id) INTO k, kd, i
		  FROM old_rows r JOIN s3grant.data_sources d ON d.id = r.data_source_id;
	ELSE
		SELECT array_agg('s:' || d.integration_id || ':' || r.user_id || ':' || r.data_source_id),
		       array_agg('subscription'::text), array_agg(d.integration_id) INTO k, kd, i
		  FROM (SELECT n.user_id, n.data_source_id FROM new_rows n JOIN old_rows o USING (id)
			 WHERE n.access <> o.access OR n.user_id <> o.user_id OR n.data_source_id <> o.data_source_id
			UNION ALL
			SELECT o.user_id, o.data_source_id FROM new_rows n JOIN old_rows o USING (id)
			 WHERE n.user_id <> o.user_id OR n.data_source_id <> o.data_source_id) r
		  JOIN s3grant.data_sources d ON d.id = r.data_source_id;
	END IF;
	IF k IS NOT NULL THEN PERFORM s3grant.enqueue(k, kd, i); END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER subscriptions_changed_ins AFTER INSERT ON s3grant.subscriptions
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION s3grant.subscriptions_changed();
CREATE TRIGGER subscriptions_changed_upd AFTER UPDATE ON s3grant.subscriptions
	REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION s3grant.subscriptions_changed();
CREATE TRIGGER subscriptions_changed_del AFTER DELETE ON s3grant.subscriptions
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION s3grant.subscriptions_changed();

-- A user's principal change touches every integration where the user has subscriptions.
CREATE FUNCTION s3grant.users_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	k text[]; kd text[]; i bigint[];
BEGIN
	SELECT array_agg('u:' || d.integration_id || ':' || n.id), array_agg('user'::text),
	       array_agg(d.integration_id) INTO k, kd, i
	  FROM new_rows n JOIN old_rows o USING (id)
	  JOIN s3grant.subscriptions s ON s.user_id = n.id
	  JOIN s3grant.data_sources d ON d.id = s.data_source_id
	 WHERE n.principal IS DISTINCT FROM o.principal OR n.username <> o.username;
	IF k IS NOT NULL THEN PERFORM s3grant.enqueue(k, kd, i); END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER users_changed_upd AFTER UPDATE ON s3grant.users
	REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION s3grant.users_changed();

-- Claim up to p_batch ready keys for p_lease_ms: keys never leased or whose
-- lease expired. SKIP LOCKED lets several claimants run side by side; a key
-- is one row, so a key is held by one claimant at a time.
CREATE FUNCTION s3grant.claim_changes(p_batch int, p_lease_ms int, p_who text)
RETURNS TABLE (key text, kind text, integration_id bigint, seq bigint, changes bigint, attempts int)
LANGUAGE sql AS $$
	UPDATE s3grant.change_queue q
	   SET locked_until = clock_timestamp() + p_lease_ms * interval '1 millisecond',
	       locked_by = p_who, attempts = q.attempts + 1
	  FROM (SELECT c.key FROM s3grant.change_queue c
		 WHERE c.locked_until IS NULL OR c.locked_until < clock_timestamp()
		 ORDER BY c.enqueued_at
		 LIMIT p_batch
		 FOR UPDATE SKIP LOCKED) r
	 WHERE q.key = r.key
	RETURNING q.key, q.kind, q.integration_id, q.seq, q.changes, q.attempts
$$;

-- Ack claimed keys: a key whose seq is unchanged is done and deleted; a key
-- that changed again since the claim is released for the next claim.
-- Returns the number of keys deleted.
CREATE FUNCTION s3grant.ack_changes(p_keys text[], p_seqs bigint[], p_who text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	UPDATE s3grant.change_queue q SET locked_until = NULL, locked_by = NULL
	  FROM unnest(p_keys, p_seqs) AS a(key, seq)
	 WHERE q.key = a.key AND q.seq <> a.seq AND q.locked_by = p_who;
	DELETE FROM s3grant.change_queue q
	 USING unnest(p_keys, p_seqs) AS a(key, seq)
	 WHERE q.key = a.key AND q.seq = a.seq AND q.locked_by = p_who;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END $$;

-- Give keys back (on error) without deleting them; they are claimable after p_delay_ms.
CREATE FUNCTION s3grant.release_changes(p_keys text[], p_who text, p_delay_ms int)
RETURNS void LANGUAGE sql AS $$
	UPDATE s3grant.change_queue q
	   SET locked_until = CASE WHEN p_delay_ms > 0
				  THEN clock_timestamp() + p_delay_ms * interval '1 millisecond' END,
	       locked_by = NULL
	 WHERE q.key = ANY (p_keys) AND q.locked_by = p_who
$$;
