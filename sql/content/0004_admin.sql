-- Administration: every administrative operation as one SQL function, so
-- that pchatctl, the HTTPS API and the IRC commands of room managers run the
-- same code (docs/room-model.md, docs/admin-guide.md).
--
-- Each function takes the acting account's name first. NULL is the
-- operator (pchatctl with database access): full rights. An account actor
-- must exist and not be disabled; administrators may do everything, room
-- managers what pchat_room_set/_grant/_revoke allow them. Errors:
--   42501 insufficient_privilege  the actor may not do this
--   P0002 no_data_found           a name that does not exist
--   22023 invalid_parameter_value a bad value
--   23505 unique_violation        the name is taken
--   23503 foreign_key_violation   still in use (a category with rooms)
-- For an actor that is not an administrator, a room that does not exist and
-- a room the actor does not manage give the same 42501, so the functions
-- cannot be used to find secret rooms.
--
-- Every change ends with NOTIFY pchat_acl, payload 'room <id>',
-- 'category <id>', 'account <id>' or 'group <id>'.

-- rfc1459 casefolding, byte for byte as src/irc/casemap.c: A-Z [ \ ] ^ fold
-- to a-z { | } ~ and nothing else changes.
CREATE FUNCTION pchat_fold(p text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT translate(p, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^',
                        'abcdefghijklmnopqrstuvwxyz{|}~')
$$;

CREATE FUNCTION pchat_bool(p_key text, p_value text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF lower(p_value) IN ('true', 'yes', 'on', '1') THEN
        RETURN true;
    ELSIF lower(p_value) IN ('false', 'no', 'off', '0') THEN
        RETURN false;
    END IF;
    RAISE EXCEPTION '%: expected true or false, not "%"', p_key, p_value
        USING ERRCODE = '22023';
END
$$;

-- The acting account: (id, is_admin). NULL actor: the operator, (NULL,
-- true). An unknown or disabled account has no rights at all.
CREATE FUNCTION pchat_actor(p_actor text, OUT id bigint, OUT is_admin boolean)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_disabled boolean;
BEGIN
    IF p_actor IS NULL THEN
        id := NULL;
        is_admin := true;
        RETURN;
    END IF;
    SELECT a.id, a.is_admin, a.disabled INTO id, is_admin, v_disabled
      FROM accounts a WHERE a.name_folded = pchat_fold(p_actor);
    IF NOT FOUND OR v_disabled THEN
        RAISE EXCEPTION 'permission denied: "%" is not an enabled account',
            p_actor USING ERRCODE = '42501';
    END IF;
END
$$;

CREATE FUNCTION pchat_require_admin(p_actor text, p_what text)
RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE
    v record;
BEGIN
    v := pchat_actor(p_actor);
    IF NOT v.is_admin THEN
        RAISE EXCEPTION 'permission denied: only administrators may %', p_what
            USING ERRCODE = '42501';
    END IF;
    RETURN v.id;
END
$$;

CREATE FUNCTION pchat_check_account_name(p_name text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    -- An account name is also the IRC nick: a letter or [\]^_`{|} first,
    -- then those, digits and '-' (src/irc/validate.c), at most 64 bytes.
    IF p_name IS NULL OR octet_length(p_name) > 64
       OR p_name !~ '^[A-Za-z\[\]\\^_`{|}][A-Za-z0-9\[\]\\^_`{|}-]*$' THEN
        RAISE EXCEPTION 'invalid account name "%": a nickname of at most 64 '
            'characters (letters, digits, - [ ] \ ^ _ ` { | }, not starting '
            'with a digit or -)', p_name USING ERRCODE = '22023';
    END IF;
END
$$;

-- Group and category names: letters, digits, '.', '_' and '-'.
CREATE FUNCTION pchat_check_plain_name(p_kind text, p_name text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_name IS NULL OR octet_length(p_name) > 64
       OR p_name !~ '^[A-Za-z0-9][A-Za-z0-9._-]*$' THEN
        RAISE EXCEPTION 'invalid % name "%": at most 64 letters, digits, '
            '".", "_" or "-", starting with a letter or digit', p_kind, p_name
            USING ERRCODE = '22023';
    END IF;
END
$$;

CREATE FUNCTION pchat_check_room_name(p_name text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    -- As pc_irc_chan_valid: '#', then no space, comma, colon, BEL, CR, LF.
    IF p_name IS NULL OR octet_length(p_name) > 200
       OR p_name !~ E'^#[^ ,:\\x07\\r\\n]+$' THEN
        RAISE EXCEPTION 'invalid room name "%": "#" followed by at most 199 '
            'bytes without spaces, commas or colons', p_name
            USING ERRCODE = '22023';
    END IF;
END
$$;

CREATE FUNCTION pchat_account_id(p_name text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v bigint;
BEGIN
    SELECT a.id INTO v FROM accounts a
     WHERE a.name_folded = pchat_fold(p_name);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such account "%"', p_name USING ERRCODE = 'P0002';
    END IF;
    RETURN v;
END
$$;

CREATE FUNCTION pchat_group_id(p_name text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v bigint;
BEGIN
    SELECT g.id INTO v FROM groups g WHERE g.name_folded = pchat_fold(p_name);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such group "%"', p_name USING ERRCODE = 'P0002';
    END IF;
    RETURN v;
END
$$;

CREATE FUNCTION pchat_category_id(p_name text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v bigint;
BEGIN
    SELECT c.id INTO v FROM categories c
     WHERE c.name_folded = pchat_fold(p_name);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such category "%"', p_name
            USING ERRCODE = 'P0002';
    END IF;
    RETURN v;
END
$$;

-- The one parser of principals: 'alice', 'account:alice', 'group:eng',
-- 'authenticated', 'anyone'. The two keywords win over accounts of that
-- name, which are written 'account:anyone'.
CREATE FUNCTION pchat_principal(p text, OUT kind text, OUT account_id bigint,
                                OUT group_id bigint)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p IS NULL OR p = '' THEN
        RAISE EXCEPTION 'a principal is required: NAME, account:NAME, '
            'group:NAME, authenticated or anyone' USING ERRCODE = '22023';
    ELSIF p IN ('authenticated', 'anyone') THEN
        kind := p;
    ELSIF p LIKE 'group:%' THEN
        kind := 'group';
        group_id := pchat_group_id(substr(p, 7));
    ELSIF p LIKE 'account:%' THEN
        kind := 'account';
        account_id := pchat_account_id(substr(p, 9));
    ELSIF position(':' IN p) > 0 THEN
        RAISE EXCEPTION 'invalid principal "%": NAME, account:NAME, '
            'group:NAME, authenticated or anyone', p USING ERRCODE = '22023';
    ELSE
        kind := 'account';
        account_id := pchat_account_id(p);
    END IF;
END
$$;

-- How a stored principal is written back: parseable by pchat_principal.
CREATE FUNCTION pchat_principal_text(p_kind text, p_account bigint,
                                     p_group bigint) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE p_kind
        WHEN 'account' THEN
            'account:' || (SELECT a.name FROM accounts a WHERE a.id = p_account)
        WHEN 'group' THEN
            'group:' || (SELECT g.name FROM groups g WHERE g.id = p_group)
        ELSE p_kind END
$$;

-- Does a stored principal match this account (NULL: unauthenticated)?
CREATE FUNCTION pchat_principal_matches(p_kind text, p_account bigint,
                                        p_group bigint, p_who bigint)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT CASE p_kind
        WHEN 'anyone' THEN true
        WHEN 'authenticated' THEN p_who IS NOT NULL
        WHEN 'account' THEN p_account = p_who
        WHEN 'group' THEN EXISTS (SELECT 1 FROM group_members m
                                   WHERE m.group_id = p_group
                                     AND m.account_id = p_who)
        ELSE false END
$$;

CREATE FUNCTION pchat_room_has_role(p_room bigint, p_role text, p_who bigint)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM room_principals rp
                    WHERE rp.room_id = p_room AND rp.role = p_role
                      AND pchat_principal_matches(rp.kind, rp.account_id,
                                                  rp.group_id, p_who))
$$;

CREATE FUNCTION pchat_category_has_role(p_cat bigint, p_role text,
                                        p_who bigint)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM category_principals cp
                    WHERE cp.category_id = p_cat AND cp.role = p_role
                      AND pchat_principal_matches(cp.kind, cp.account_id,
                                                  cp.group_id, p_who))
$$;

-- The room an actor may administer: its id, and whether the actor is an
-- administrator. A non-administrator must manage the room, and learns
-- nothing about rooms they do not manage (missing and refused look alike).
CREATE FUNCTION pchat_room_for(p_actor text, p_room text, p_what text,
                               OUT id bigint, OUT is_admin boolean)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v record;
BEGIN
    v := pchat_actor(p_actor);
    is_admin := v.is_admin;
    SELECT r.id INTO id FROM rooms r WHERE r.name_folded = pchat_fold(p_room);
    IF v.is_admin THEN
        IF id IS NULL THEN
            RAISE EXCEPTION 'no such room "%"', p_room
                USING ERRCODE = 'P0002';
        END IF;
        RETURN;
    END IF;
    IF id IS NULL OR NOT pchat_room_has_role(id, 'manager', v.id) THEN
        RAISE EXCEPTION 'permission denied: only administrators and managers '
            'of room "%" may %', p_room, p_what USING ERRCODE = '42501';
    END IF;
END
$$;

CREATE FUNCTION pchat_notify(p_what text, p_id bigint) RETURNS void
LANGUAGE sql AS $$
    SELECT pg_notify('pchat_acl', p_what || ' ' || p_id)
$$;

CREATE FUNCTION pchat_check_keys(p_iterations integer, p_salt bytea,
                                 p_stored_key bytea, p_server_key bytea)
RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_iterations IS NULL OR p_iterations < 4096
       OR p_iterations > 10000000 THEN
        RAISE EXCEPTION 'SCRAM iterations must be 4096 to 10000000, not %',
            p_iterations USING ERRCODE = '22023';
    END IF;
    IF p_salt IS NULL OR octet_length(p_salt) NOT BETWEEN 8 AND 128 THEN
        RAISE EXCEPTION 'SCRAM salt must be 8 to 128 bytes'
            USING ERRCODE = '22023';
    END IF;
    IF octet_length(p_stored_key) IS DISTINCT FROM 32
       OR octet_length(p_server_key) IS DISTINCT FROM 32 THEN
        RAISE EXCEPTION 'SCRAM-SHA-256 keys are 32 bytes each'
            USING ERRCODE = '22023';
    END IF;
END
$$;

------------------------------------------------------------------ accounts

-- Keys may all be NULL: an account without a password (certificate only).
CREATE FUNCTION pchat_account_create(p_actor text, p_name text,
                                     p_is_admin boolean, p_iterations integer,
                                     p_salt bytea, p_stored_key bytea,
                                     p_server_key bytea)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM pchat_require_admin(p_actor, 'create accounts');
    PERFORM pchat_check_account_name(p_name);
    IF p_iterations IS NOT NULL OR p_salt IS NOT NULL
       OR p_stored_key IS NOT NULL OR p_server_key IS NOT NULL THEN
        PERFORM pchat_check_keys(p_iterations, p_salt, p_stored_key,
                                 p_server_key);
    END IF;
    IF EXISTS (SELECT 1 FROM accounts a
                WHERE a.name_folded = pchat_fold(p_name)) THEN
        RAISE EXCEPTION 'account "%" already exists', p_name
            USING ERRCODE = '23505';
    END IF;
    INSERT INTO accounts (name, name_folded, is_admin, scram_iterations,
                          scram_salt, scram_stored_key, scram_server_key)
    VALUES (p_name, pchat_fold(p_name), coalesce(p_is_admin, false),
            p_iterations, p_salt, p_stored_key, p_server_key)
    RETURNING id INTO v_id;
    PERFORM pchat_notify('account', v_id);
    RETURN v_id;
END
$$;

-- Administrators set anyone's password; an account may set its own.
CREATE FUNCTION pchat_account_set_keys(p_actor text, p_name text,
                                       p_iterations integer, p_salt bytea,
                                       p_stored_key bytea, p_server_key bytea)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v record;
    v_id bigint;
BEGIN
    v := pchat_actor(p_actor);
    IF NOT v.is_admin
       AND pchat_fold(p_actor) IS DISTINCT FROM pchat_fold(p_name) THEN
        RAISE EXCEPTION 'permission denied: only administrators may set '
            'another account''s password' USING ERRCODE = '42501';
    END IF;
    v_id := pchat_account_id(p_name);
    PERFORM pchat_check_keys(p_iterations, p_salt, p_stored_key, p_server_key);
    UPDATE accounts
       SET scram_iterations = p_iterations, scram_salt = p_salt,
           scram_stored_key = p_stored_key, scram_server_key = p_server_key
     WHERE id = v_id;
    PERFORM pchat_notify('account', v_id);
END
$$;

-- admin, disabled: administrators only; display_name: also the account
-- itself.
CREATE FUNCTION pchat_account_set(p_actor text, p_name text, p_key text,
                                  p_value text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v record;
    v_id bigint;
BEGIN
    v := pchat_actor(p_actor);
    IF NOT v.is_admin AND (p_key IS DISTINCT FROM 'display_name'
        OR pchat_fold(p_actor) IS DISTINCT FROM pchat_fold(p_name)) THEN
        RAISE EXCEPTION 'permission denied: only administrators may change '
            'accounts' USING ERRCODE = '42501';
    END IF;
    v_id := pchat_account_id(p_name);
    CASE p_key
    WHEN 'admin' THEN
        UPDATE accounts SET is_admin = pchat_bool(p_key, p_value)
         WHERE id = v_id;
    WHEN 'disabled' THEN
        UPDATE accounts SET disabled = pchat_bool(p_key, p_value)
         WHERE id = v_id;
    WHEN 'display_name' THEN
        IF octet_length(p_value) > 200 OR p_value ~ E'[\\x01-\\x1f]' THEN
            RAISE EXCEPTION 'display_name: at most 200 bytes, no control '
                'characters' USING ERRCODE = '22023';
        END IF;
        UPDATE accounts SET display_name = coalesce(p_value, '')
         WHERE id = v_id;
    ELSE
        RAISE EXCEPTION 'unknown account setting "%": admin, disabled or '
            'display_name', p_key USING ERRCODE = '22023';
    END CASE;
    PERFORM pchat_notify('account', v_id);
END
$$;

CREATE FUNCTION pchat_account_delete(p_actor text, p_name text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM pchat_require_admin(p_actor, 'delete accounts');
    v_id := pchat_account_id(p_name);
    DELETE FROM accounts WHERE id = v_id;
    PERFORM pchat_notify('account', v_id);
END
$$;

CREATE FUNCTION pchat_account_cert_add(p_actor text, p_name text,
                                       p_fingerprint text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
    v_fp text := lower(replace(p_fingerprint, ':', ''));
BEGIN
    PERFORM pchat_require_admin(p_actor, 'bind certificates');
    v_id := pchat_account_id(p_name);
    IF v_fp IS NULL OR v_fp !~ '^[0-9a-f]{64}$' THEN
        RAISE EXCEPTION 'invalid fingerprint "%": the SHA-256 of the '
            'certificate, 64 hex digits (colons allowed)', p_fingerprint
            USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM account_certs c WHERE c.fingerprint = v_fp) THEN
        RAISE EXCEPTION 'certificate % is already bound to an account', v_fp
            USING ERRCODE = '23505';
    END IF;
    INSERT INTO account_certs (fingerprint, account_id) VALUES (v_fp, v_id);
    PERFORM pchat_notify('account', v_id);
END
$$;

CREATE FUNCTION pchat_account_cert_remove(p_actor text, p_fingerprint text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM pchat_require_admin(p_actor, 'unbind certificates');
    DELETE FROM account_certs
     WHERE fingerprint = lower(replace(p_fingerprint, ':', ''))
    RETURNING account_id INTO v_id;
    IF v_id IS NULL THEN
        RAISE EXCEPTION 'no such certificate "%"', p_fingerprint
            USING ERRCODE = 'P0002';
    END IF;
    PERFORM pchat_notify('account', v_id);
END
$$;

-------------------------------------------------------------------- groups

CREATE FUNCTION pchat_group_create(p_actor text, p_name text,
                                   p_description text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM pchat_require_admin(p_actor, 'create groups');
    PERFORM pchat_check_plain_name('group', p_name);
    IF EXISTS (SELECT 1 FROM groups g
                WHERE g.name_folded = pchat_fold(p_name)) THEN
        RAISE EXCEPTION 'group "%" already exists', p_name
            USING ERRCODE = '23505';
    END IF;
    INSERT INTO groups (name, name_folded, description)
    VALUES (p_name, pchat_fold(p_name), coalesce(p_description, ''))
    RETURNING id INTO v_id;
    PERFORM pchat_notify('group', v_id);
    RETURN v_id;
END
$$;

CREATE FUNCTION pchat_group_delete(p_actor text, p_name text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM pchat_require_admin(p_actor, 'delete groups');
    v_id := pchat_group_id(p_name);
    DELETE FROM groups WHERE id = v_id;
    PERFORM pchat_notify('group', v_id);
END
$$;

CREATE FUNCTION pchat_group_add(p_actor text, p_group text, p_account text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM pchat_require_admin(p_actor, 'change groups');
    v_id := pchat_group_id(p_group);
    INSERT INTO group_members (group_id, account_id)
    VALUES (v_id, pchat_account_id(p_account)) ON CONFLICT DO NOTHING;
    PERFORM pchat_notify('group', v_id);
END
$$;

CREATE FUNCTION pchat_group_remove(p_actor text, p_group text,
                                   p_account text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM pchat_require_admin(p_actor, 'change groups');
    v_id := pchat_group_id(p_group);
    DELETE FROM group_members
     WHERE group_id = v_id AND account_id = pchat_account_id(p_account);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account "%" is not in group "%"', p_account, p_group
            USING ERRCODE = 'P0002';
    END IF;
    PERFORM pchat_notify('group', v_id);
END
$$;

---------------------------------------------------------------- categories

CREATE FUNCTION pchat_category_create(p_actor text, p_name text,
                                      p_description text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM pchat_require_admin(p_actor, 'create categories');
    PERFORM pchat_check_plain_name('category', p_name);
    IF EXISTS (SELECT 1 FROM categories c
                WHERE c.name_folded = pchat_fold(p_name)) THEN
        RAISE EXCEPTION 'category "%" already exists', p_name
            USING ERRCODE = '23505';
    END IF;
    INSERT INTO categories (name, name_folded, description)
    VALUES (p_name, pchat_fold(p_name), coalesce(p_description, ''))
    RETURNING id INTO v_id;
    PERFORM pchat_notify('category', v_id);
    RETURN v_id;
END
$$;

CREATE FUNCTION pchat_category_delete(p_actor text, p_name text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
    v_rooms bigint;
BEGIN
    PERFORM pchat_require_admin(p_actor, 'delete categories');
    v_id := pchat_category_id(p_name);
    IF v_id = 1 THEN
        RAISE EXCEPTION 'the default category cannot be deleted'
            USING ERRCODE = '22023';
    END IF;
    SELECT count(*) INTO v_rooms FROM rooms r WHERE r.category_id = v_id;
    IF v_rooms > 0 THEN
        RAISE EXCEPTION 'category "%" still has % room(s): move or delete '
            'them first', p_name, v_rooms USING ERRCODE = '23503';
    END IF;
    DELETE FROM categories WHERE id = v_id;
    PERFORM pchat_notify('category', v_id);
END
$$;

CREATE FUNCTION pchat_category_set(p_actor text, p_name text, p_key text,
                                   p_value text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM pchat_require_admin(p_actor, 'change categories');
    v_id := pchat_category_id(p_name);
    CASE p_key
    WHEN 'description' THEN
        UPDATE categories SET description = coalesce(p_value, '')
         WHERE id = v_id;
    WHEN 'invitations_allowed' THEN
        UPDATE categories SET invitations_allowed = pchat_bool(p_key, p_value)
         WHERE id = v_id;
    WHEN 'uploads_allowed' THEN
        UPDATE categories SET uploads_allowed = pchat_bool(p_key, p_value)
         WHERE id = v_id;
    WHEN 'history_kept' THEN
        UPDATE categories SET history_kept = pchat_bool(p_key, p_value)
         WHERE id = v_id;
    ELSE
        RAISE EXCEPTION 'unknown category setting "%": description, '
            'invitations_allowed, uploads_allowed or history_kept', p_key
            USING ERRCODE = '22023';
    END CASE;
    PERFORM pchat_notify('category', v_id);
END
$$;

CREATE FUNCTION pchat_check_category_role(p_role text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_role IS NULL OR p_role NOT IN ('allowed', 'denied', 'creator') THEN
        RAISE EXCEPTION 'unknown category role "%": allowed, denied or '
            'creator', p_role USING ERRCODE = '22023';
    END IF;
END
$$;

CREATE FUNCTION pchat_category_grant(p_actor text, p_category text,
                                     p_role text, p_principal text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
    p record;
BEGIN
    PERFORM pchat_require_admin(p_actor, 'change categories');
    v_id := pchat_category_id(p_category);
    PERFORM pchat_check_category_role(p_role);
    p := pchat_principal(p_principal);
    INSERT INTO category_principals (category_id, role, kind, account_id,
                                     group_id)
    VALUES (v_id, p_role, p.kind, p.account_id, p.group_id)
    ON CONFLICT DO NOTHING;
    PERFORM pchat_notify('category', v_id);
END
$$;

CREATE FUNCTION pchat_category_revoke(p_actor text, p_category text,
                                      p_role text, p_principal text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
    p record;
BEGIN
    PERFORM pchat_require_admin(p_actor, 'change categories');
    v_id := pchat_category_id(p_category);
    PERFORM pchat_check_category_role(p_role);
    p := pchat_principal(p_principal);
    DELETE FROM category_principals cp
     WHERE cp.category_id = v_id AND cp.role = p_role AND cp.kind = p.kind
       AND cp.account_id IS NOT DISTINCT FROM p.account_id
       AND cp.group_id IS NOT DISTINCT FROM p.group_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not % in category "%"', p_principal, p_role,
            p_category USING ERRCODE = 'P0002';
    END IF;
    PERFORM pchat_notify('category', v_id);
END
$$;

--------------------------------------------------------------------- rooms

CREATE FUNCTION pchat_check_room_value(p_key text, p_value text)
RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_key = 'type' AND (p_value IS NULL
                           OR p_value NOT IN ('normal', 'auditorium')) THEN
        RAISE EXCEPTION 'room type must be normal or auditorium, not "%"',
            p_value USING ERRCODE = '22023';
    ELSIF p_key = 'privacy' AND (p_value IS NULL
            OR p_value NOT IN ('open', 'closed', 'secret')) THEN
        RAISE EXCEPTION 'room privacy must be open, closed or secret, not "%"',
            p_value USING ERRCODE = '22023';
    ELSIF p_key IN ('description', 'topic', 'addin_url')
          AND (octet_length(p_value) > 1000
               OR p_value ~ E'[\\x00-\\x08\\x0a-\\x1f]') THEN
        RAISE EXCEPTION '%: at most 1000 bytes on one line', p_key
            USING ERRCODE = '22023';
    END IF;
END
$$;

-- Administrators create rooms anywhere; an account that is allowed in the
-- category and one of its creators creates rooms there and becomes the
-- room's manager.
CREATE FUNCTION pchat_room_create(p_actor text, p_name text, p_category text,
                                  p_type text, p_privacy text,
                                  p_description text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v record;
    v_cat bigint;
    v_id bigint;
BEGIN
    v := pchat_actor(p_actor);
    PERFORM pchat_check_room_name(p_name);
    v_cat := pchat_category_id(coalesce(p_category, 'default'));
    IF NOT v.is_admin
       AND NOT (pchat_category_has_role(v_cat, 'creator', v.id)
                AND pchat_category_has_role(v_cat, 'allowed', v.id)
                AND NOT pchat_category_has_role(v_cat, 'denied', v.id)) THEN
        RAISE EXCEPTION 'permission denied: "%" may not create rooms in '
            'category "%"', p_actor, p_category USING ERRCODE = '42501';
    END IF;
    PERFORM pchat_check_room_value('type', coalesce(p_type, 'normal'));
    PERFORM pchat_check_room_value('privacy', coalesce(p_privacy, 'open'));
    PERFORM pchat_check_room_value('description', p_description);
    IF EXISTS (SELECT 1 FROM rooms r
                WHERE r.name_folded = pchat_fold(p_name)) THEN
        RAISE EXCEPTION 'room "%" already exists', p_name
            USING ERRCODE = '23505';
    END IF;
    INSERT INTO rooms (name, name_folded, category_id, type, privacy,
                       description, created_by)
    VALUES (p_name, pchat_fold(p_name), v_cat, coalesce(p_type, 'normal'),
            coalesce(p_privacy, 'open'), coalesce(p_description, ''), v.id)
    RETURNING id INTO v_id;
    IF NOT v.is_admin THEN
        INSERT INTO room_principals (room_id, role, kind, account_id)
        VALUES (v_id, 'manager', 'account', v.id);
    END IF;
    PERFORM pchat_notify('room', v_id);
    RETURN v_id;
END
$$;

-- Managers may change description, topic, type, privacy and addin_url;
-- category and disabled are for administrators.
CREATE FUNCTION pchat_room_set(p_actor text, p_room text, p_key text,
                               p_value text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    r := pchat_room_for(p_actor, p_room, 'change it');
    IF p_key IN ('category', 'disabled') AND NOT r.is_admin THEN
        RAISE EXCEPTION 'permission denied: only administrators may change '
            'a room''s %', p_key USING ERRCODE = '42501';
    END IF;
    PERFORM pchat_check_room_value(p_key, p_value);
    CASE p_key
    WHEN 'description' THEN
        UPDATE rooms SET description = coalesce(p_value, '') WHERE id = r.id;
    WHEN 'topic' THEN
        UPDATE rooms SET topic = coalesce(p_value, ''),
                         topic_by = coalesce(p_actor, 'pchatctl'),
                         topic_at = now()
         WHERE id = r.id;
    WHEN 'type' THEN
        UPDATE rooms SET type = p_value WHERE id = r.id;
    WHEN 'privacy' THEN
        UPDATE rooms SET privacy = p_value WHERE id = r.id;
    WHEN 'addin_url' THEN
        UPDATE rooms SET addin_url = coalesce(p_value, '') WHERE id = r.id;
    WHEN 'category' THEN
        UPDATE rooms SET category_id = pchat_category_id(p_value)
         WHERE id = r.id;
    WHEN 'disabled' THEN
        UPDATE rooms SET disabled = pchat_bool(p_key, p_value)
         WHERE id = r.id;
    ELSE
        RAISE EXCEPTION 'unknown room setting "%": description, topic, type, '
            'privacy, category, addin_url or disabled', p_key
            USING ERRCODE = '22023';
    END CASE;
    PERFORM pchat_notify('room', r.id);
END
$$;

-- Managers grant and revoke member and presenter; only administrators
-- grant or revoke manager (a manager cannot make or unmake managers).
CREATE FUNCTION pchat_room_role_for(p_actor text, p_room text, p_role text)
RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE
    r record;
BEGIN
    r := pchat_room_for(p_actor, p_room, 'change its members');
    IF p_role IS NULL OR p_role NOT IN ('member', 'manager', 'presenter') THEN
        RAISE EXCEPTION 'unknown room role "%": member, manager or presenter',
            p_role USING ERRCODE = '22023';
    END IF;
    IF p_role = 'manager' AND NOT r.is_admin THEN
        RAISE EXCEPTION 'permission denied: only administrators may change '
            'a room''s managers' USING ERRCODE = '42501';
    END IF;
    RETURN r.id;
END
$$;

CREATE FUNCTION pchat_room_grant(p_actor text, p_room text, p_role text,
                                 p_principal text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
    p record;
BEGIN
    v_id := pchat_room_role_for(p_actor, p_room, p_role);
    p := pchat_principal(p_principal);
    INSERT INTO room_principals (room_id, role, kind, account_id, group_id)
    VALUES (v_id, p_role, p.kind, p.account_id, p.group_id)
    ON CONFLICT DO NOTHING;
    PERFORM pchat_notify('room', v_id);
END
$$;

CREATE FUNCTION pchat_room_revoke(p_actor text, p_room text, p_role text,
                                  p_principal text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
    p record;
BEGIN
    v_id := pchat_room_role_for(p_actor, p_room, p_role);
    p := pchat_principal(p_principal);
    DELETE FROM room_principals rp
     WHERE rp.room_id = v_id AND rp.role = p_role AND rp.kind = p.kind
       AND rp.account_id IS NOT DISTINCT FROM p.account_id
       AND rp.group_id IS NOT DISTINCT FROM p.group_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not % of room "%"', p_principal, p_role, p_room
            USING ERRCODE = 'P0002';
    END IF;
    PERFORM pchat_notify('room', v_id);
END
$$;

CREATE FUNCTION pchat_room_delete(p_actor text, p_room text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    r := pchat_room_for(p_actor, p_room, 'delete it');
    IF NOT r.is_admin THEN
        RAISE EXCEPTION 'permission denied: only administrators may delete '
            'rooms' USING ERRCODE = '42501';
    END IF;
    DELETE FROM rooms WHERE id = r.id;
    PERFORM pchat_notify('room', r.id);
END
$$;

-- Messages of the room before p_before become placeholders: the row and
-- its seq stay (history has no hole), the text and tags go. Returns how
-- many messages were removed.
CREATE FUNCTION pchat_room_clear_history(p_actor text, p_room text,
                                         p_before timestamptz)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_count bigint;
BEGIN
    r := pchat_room_for(p_actor, p_room, 'clear its history');
    IF NOT r.is_admin THEN
        RAISE EXCEPTION 'permission denied: only administrators may clear '
            'history' USING ERRCODE = '42501';
    END IF;
    IF p_before IS NULL THEN
        RAISE EXCEPTION 'a date is required' USING ERRCODE = '22023';
    END IF;
    UPDATE messages
       SET removed_at = now(), removed_by = coalesce(p_actor, 'pchatctl'),
           body = '', tags = ''
     WHERE room_id = r.id AND at < p_before AND removed_at IS NULL;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    PERFORM pchat_notify('room', r.id);
    RETURN v_count;
END
$$;

CREATE FUNCTION pchat_message_remove(p_actor text, p_msgid text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_room bigint;
    v_msgid uuid;
BEGIN
    PERFORM pchat_require_admin(p_actor, 'remove messages');
    BEGIN
        v_msgid := p_msgid::uuid;
    EXCEPTION WHEN invalid_text_representation THEN
        RAISE EXCEPTION 'invalid msgid "%": a UUID', p_msgid
            USING ERRCODE = '22023';
    END;
    UPDATE messages
       SET removed_at = coalesce(removed_at, now()),
           removed_by = coalesce(removed_by, p_actor, 'pchatctl'),
           body = '', tags = ''
     WHERE msgid = v_msgid
    RETURNING room_id INTO v_room;
    IF v_room IS NULL THEN
        RAISE EXCEPTION 'no such message "%"', p_msgid
            USING ERRCODE = 'P0002';
    END IF;
    PERFORM pchat_notify('room', v_room);
END
$$;

------------------------------------------------------ listings (jsonb)
-- What pchatctl list/show and the HTTP API's GETs print, with the same
-- rights: administrators (and the operator) see everything; a room manager
-- sees the rooms they manage.

CREATE FUNCTION pchat_account_list(p_actor text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM pchat_require_admin(p_actor, 'list accounts');
    RETURN coalesce((
        SELECT jsonb_agg(jsonb_build_object(
            'name', a.name, 'display_name', a.display_name,
            'admin', a.is_admin, 'disabled', a.disabled,
            'password', a.scram_stored_key IS NOT NULL,
            'created_at', a.created_at,
            'certs', coalesce((SELECT jsonb_agg(c.fingerprint
                                                ORDER BY c.fingerprint)
                                 FROM account_certs c
                                WHERE c.account_id = a.id), '[]'),
            'groups', coalesce((SELECT jsonb_agg(g.name ORDER BY g.name)
                                  FROM group_members m
                                  JOIN groups g ON g.id = m.group_id
                                 WHERE m.account_id = a.id), '[]'))
            ORDER BY a.name_folded)
          FROM accounts a), '[]');
END
$$;

CREATE FUNCTION pchat_group_list(p_actor text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM pchat_require_admin(p_actor, 'list groups');
    RETURN coalesce((
        SELECT jsonb_agg(jsonb_build_object(
            'name', g.name, 'description', g.description,
            'members', coalesce((SELECT jsonb_agg(a.name ORDER BY a.name)
                                   FROM group_members m
                                   JOIN accounts a ON a.id = m.account_id
                                  WHERE m.group_id = g.id), '[]'))
            ORDER BY g.name_folded)
          FROM groups g), '[]');
END
$$;

CREATE FUNCTION pchat_category_json(p_id bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'name', c.name, 'description', c.description,
        'invitations_allowed', c.invitations_allowed,
        'uploads_allowed', c.uploads_allowed,
        'history_kept', c.history_kept,
        'rooms', (SELECT count(*) FROM rooms r WHERE r.category_id = c.id),
        'allowed', coalesce((SELECT jsonb_agg(pchat_principal_text(
                                 cp.kind, cp.account_id, cp.group_id) ORDER BY 1)
                               FROM category_principals cp
                              WHERE cp.category_id = c.id
                                AND cp.role = 'allowed'), '[]'),
        'denied', coalesce((SELECT jsonb_agg(pchat_principal_text(
                                 cp.kind, cp.account_id, cp.group_id) ORDER BY 1)
                              FROM category_principals cp
                             WHERE cp.category_id = c.id
                               AND cp.role = 'denied'), '[]'),
        'creator', coalesce((SELECT jsonb_agg(pchat_principal_text(
                                 cp.kind, cp.account_id, cp.group_id) ORDER BY 1)
                               FROM category_principals cp
                              WHERE cp.category_id = c.id
                                AND cp.role = 'creator'), '[]'))
      FROM categories c WHERE c.id = p_id
$$;

CREATE FUNCTION pchat_category_list(p_actor text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM pchat_require_admin(p_actor, 'list categories');
    RETURN coalesce((SELECT jsonb_agg(pchat_category_json(c.id)
                                      ORDER BY c.name_folded)
                       FROM categories c), '[]');
END
$$;

CREATE FUNCTION pchat_category_show(p_actor text, p_name text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM pchat_require_admin(p_actor, 'see categories');
    RETURN pchat_category_json(pchat_category_id(p_name));
END
$$;

CREATE FUNCTION pchat_room_json(p_id bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'name', r.name, 'category', c.name, 'description', r.description,
        'topic', r.topic, 'type', r.type, 'privacy', r.privacy,
        'disabled', r.disabled, 'addin_url', r.addin_url,
        'created_at', r.created_at, 'messages', r.last_seq,
        'member', coalesce((SELECT jsonb_agg(pchat_principal_text(
                                rp.kind, rp.account_id, rp.group_id) ORDER BY 1)
                              FROM room_principals rp
                             WHERE rp.room_id = r.id AND rp.role = 'member'),
                           '[]'),
        'manager', coalesce((SELECT jsonb_agg(pchat_principal_text(
                                rp.kind, rp.account_id, rp.group_id) ORDER BY 1)
                               FROM room_principals rp
                              WHERE rp.room_id = r.id AND rp.role = 'manager'),
                            '[]'),
        'presenter', coalesce((SELECT jsonb_agg(pchat_principal_text(
                                rp.kind, rp.account_id, rp.group_id) ORDER BY 1)
                                 FROM room_principals rp
                                WHERE rp.room_id = r.id
                                  AND rp.role = 'presenter'), '[]'))
      FROM rooms r JOIN categories c ON c.id = r.category_id
     WHERE r.id = p_id
$$;

CREATE FUNCTION pchat_room_list(p_actor text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v record;
BEGIN
    v := pchat_actor(p_actor);
    RETURN coalesce((SELECT jsonb_agg(pchat_room_json(r.id)
                                      ORDER BY r.name_folded)
                       FROM rooms r
                      WHERE v.is_admin
                         OR pchat_room_has_role(r.id, 'manager', v.id)),
                    '[]');
END
$$;

CREATE FUNCTION pchat_room_show(p_actor text, p_room text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN pchat_room_json((pchat_room_for(p_actor, p_room, 'see it')).id);
END
$$;

------------------------------------------------ the HTTPS API's one entry
-- pchatd's administration API (src/http) prepares this one statement and
-- names the operation, so that the API adds no SQL of its own: every op is
-- one of the functions above, with the authenticated account as the actor.
-- Arguments come as text (a[1], a[2], ...); the answer is JSON text or
-- NULL. 'auth' and 'auth_cert' look up the keys of an account for pchatd's
-- password or certificate check and are called with a NULL actor only.
CREATE FUNCTION pchat_admin_call(p_actor text, p_op text, a text[])
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_json jsonb;
BEGIN
    CASE p_op
    WHEN 'auth', 'auth_cert' THEN
        IF p_actor IS NOT NULL THEN
            RAISE EXCEPTION 'permission denied' USING ERRCODE = '42501';
        END IF;
        SELECT jsonb_build_object(
                   'name', ac.name, 'admin', ac.is_admin,
                   'disabled', ac.disabled,
                   'iterations', ac.scram_iterations,
                   'salt', encode(ac.scram_salt, 'hex'),
                   'stored_key', encode(ac.scram_stored_key, 'hex'),
                   'server_key', encode(ac.scram_server_key, 'hex'))
          INTO v_json
          FROM accounts ac
         WHERE (p_op = 'auth' AND ac.name_folded = pchat_fold(a[1]))
            OR (p_op = 'auth_cert' AND ac.id = (SELECT c.account_id
                    FROM account_certs c WHERE c.fingerprint = a[1]));
        RETURN v_json::text;
    WHEN 'account_list' THEN
        RETURN pchat_account_list(p_actor)::text;
    WHEN 'account_create' THEN
        PERFORM pchat_account_create(p_actor, a[1],
            pchat_bool('admin', coalesce(a[2], 'false')), a[3]::integer,
            decode(a[4], 'hex'), decode(a[5], 'hex'), decode(a[6], 'hex'));
    WHEN 'account_set_keys' THEN
        PERFORM pchat_account_set_keys(p_actor, a[1], a[2]::integer,
            decode(a[3], 'hex'), decode(a[4], 'hex'), decode(a[5], 'hex'));
    WHEN 'account_set' THEN
        -- a[1] the account, then key, value pairs: all or none.
        FOR i IN 1 .. (coalesce(array_length(a, 1), 1) - 1) / 2 LOOP
            PERFORM pchat_account_set(p_actor, a[1], a[2 * i], a[2 * i + 1]);
        END LOOP;
    WHEN 'account_delete' THEN
        PERFORM pchat_account_delete(p_actor, a[1]);
    WHEN 'account_cert_add' THEN
        PERFORM pchat_account_cert_add(p_actor, a[1], a[2]);
    WHEN 'account_cert_remove' THEN
        -- a[1] the account named in the URL: the certificate must be its.
        IF NOT EXISTS (SELECT 1 FROM account_certs c
                        WHERE c.fingerprint = lower(replace(a[2], ':', ''))
                          AND c.account_id = pchat_account_id(a[1])) THEN
            PERFORM pchat_require_admin(p_actor, 'unbind certificates');
            RAISE EXCEPTION 'account "%" has no certificate "%"', a[1], a[2]
                USING ERRCODE = 'P0002';
        END IF;
        PERFORM pchat_account_cert_remove(p_actor, a[2]);
    WHEN 'group_list' THEN
        RETURN pchat_group_list(p_actor)::text;
    WHEN 'group_create' THEN
        PERFORM pchat_group_create(p_actor, a[1], a[2]);
    WHEN 'group_delete' THEN
        PERFORM pchat_group_delete(p_actor, a[1]);
    WHEN 'group_add' THEN
        PERFORM pchat_group_add(p_actor, a[1], a[2]);
    WHEN 'group_remove' THEN
        PERFORM pchat_group_remove(p_actor, a[1], a[2]);
    WHEN 'category_list' THEN
        RETURN pchat_category_list(p_actor)::text;
    WHEN 'category_show' THEN
        RETURN pchat_category_show(p_actor, a[1])::text;
    WHEN 'category_create' THEN
        PERFORM pchat_category_create(p_actor, a[1], a[2]);
    WHEN 'category_delete' THEN
        PERFORM pchat_category_delete(p_actor, a[1]);
    WHEN 'category_set' THEN
        FOR i IN 1 .. (coalesce(array_length(a, 1), 1) - 1) / 2 LOOP
            PERFORM pchat_category_set(p_actor, a[1], a[2 * i], a[2 * i + 1]);
        END LOOP;
    WHEN 'category_grant' THEN
        PERFORM pchat_category_grant(p_actor, a[1], a[2], a[3]);
    WHEN 'category_revoke' THEN
        PERFORM pchat_category_revoke(p_actor, a[1], a[2], a[3]);
    WHEN 'room_list' THEN
        RETURN pchat_room_list(p_actor)::text;
    WHEN 'room_show' THEN
        RETURN pchat_room_show(p_actor, a[1])::text;
    WHEN 'room_create' THEN
        PERFORM pchat_room_create(p_actor, a[1], a[2], a[3], a[4], a[5]);
    WHEN 'room_delete' THEN
        PERFORM pchat_room_delete(p_actor, a[1]);
    WHEN 'room_set' THEN
        FOR i IN 1 .. (coalesce(array_length(a, 1), 1) - 1) / 2 LOOP
            PERFORM pchat_room_set(p_actor, a[1], a[2 * i], a[2 * i + 1]);
        END LOOP;
    WHEN 'room_grant' THEN
        PERFORM pchat_room_grant(p_actor, a[1], coalesce(a[2], 'member'),
                                 a[3]);
    WHEN 'room_revoke' THEN
        PERFORM pchat_room_revoke(p_actor, a[1], a[2], a[3]);
    WHEN 'room_clear_history' THEN
        RETURN jsonb_build_object('removed', pchat_room_clear_history(
            p_actor, a[1], a[2]::timestamptz))::text;
    WHEN 'message_remove' THEN
        PERFORM pchat_message_remove(p_actor, a[1]);
    ELSE
        RAISE EXCEPTION 'unknown operation "%"', p_op USING ERRCODE = '22023';
    END CASE;
    RETURN NULL;
END
$$;
