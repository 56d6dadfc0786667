-- 0005_reconcile_indexes: cheaper reconciler writes.
--
-- One index less to maintain per grant and per intent. Each dropped index
-- is the leading column of another that serves the same lookups:
--   grants_integration_idx (integration_id)
--     → grants_integration_location_idx (integration_id, location_id)
--   grant_intents_integration_idx (integration_id)
--     → grant_intents_key (integration_id, key_md5)
DROP INDEX s3grant.grants_integration_idx;
DROP INDEX s3grant.grant_intents_integration_idx;

-- subscriptions_changed() as in 0002, but the UPDATE branch is planned at
-- each run (EXECUTE): a statement of the function is planned once per
-- session, with the transition tables of its first run; a join of new_rows
-- and old_rows planned for a handful of rows (a nested loop) then took
-- 280 ms for a 5,000-row status update (25 million row pairs).
CREATE OR REPLACE FUNCTION s3grant.subscriptions_changed() RETURNS trigger LANGUAGE plpgsql AS $$
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
		EXECUTE 'SELECT array_agg(''s:'' || d.integration_id || '':'' || r.user_id || '':'' || r.data_source_id),'
			' array_agg(''subscription''::text), array_agg(d.integration_id)'
			' FROM (SELECT n.user_id, n.data_source_id FROM new_rows n JOIN old_rows o USING (id)'
			'  WHERE n.access <> o.access OR n.user_id <> o.user_id OR n.data_source_id <> o.data_source_id'
			' UNION ALL'
			' SELECT o.user_id, o.data_source_id FROM new_rows n JOIN old_rows o USING (id)'
			'  WHERE n.user_id <> o.user_id OR n.data_source_id <> o.data_source_id) r'
			' JOIN s3grant.data_sources d ON d.id = r.data_source_id'
			INTO k, kd, i;
	END IF;
	IF k IS NOT NULL THEN PERFORM s3grant.enqueue(k, kd, i); END IF;
	RETURN NULL;
END $$;
