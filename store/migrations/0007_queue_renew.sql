-- 0007_queue_renew: a claimant renews the leases of the keys it still holds.
--
-- A reconcile pass can outlast queue_lease (a large integration under
-- throttling); without renewal its keys became claimable by another
-- daemon mid-pass, and that daemon's claim was wasted work at best.
-- Renews every key leased to p_who, expired or not, as long as nobody
-- else has claimed it since. Returns the number of keys renewed.
CREATE FUNCTION s3grant.renew_changes(p_lease_ms int, p_who text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	UPDATE s3grant.change_queue
	   SET locked_until = clock_timestamp() + p_lease_ms * interval '1 millisecond'
	 WHERE locked_by = p_who;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END $$;
