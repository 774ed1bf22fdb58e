-- A deleted account's live sessions are closed, as a disabled account's
-- are. 0004's pchat_account_delete() notified 'account <id>' like any
-- account change, and a node's reload only learns which accounts carry a
-- flag (administrator, disabled), not which ones are gone, so a deleted
-- user stayed connected (without rights). The distinct payload lets every
-- node close that account's sessions when the deletion commits.
CREATE OR REPLACE FUNCTION pchat_account_delete(p_actor text, p_name text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM pchat_require_admin(p_actor, 'delete accounts');
    v_id := pchat_account_id(p_name);
    DELETE FROM accounts WHERE id = v_id;
    PERFORM pchat_notify('account_deleted', v_id);
END
$$;
