-- The persistent-chat model: accounts, groups, categories, and what a room
-- means (type, privacy, members and roles). docs/room-model.md explains it.
--
-- A principal is who a rule names: one account, one group, every
-- authenticated account, or anyone at all (unauthenticated connections
-- included, when the server lets them in). Principal lists are stored as
-- rows (kind, account_id, group_id), exactly one of which fits the kind.
--
-- Changes that connected users must see at once are announced with
-- NOTIFY pchat_acl, payload "room <id>", "category <id>", "account <id>"
-- or "group <id>"; every pchatd LISTENs and reloads what it caches.

CREATE TABLE accounts (
    id               bigserial PRIMARY KEY,
    name             text NOT NULL,          -- also the IRC nick
    name_folded      text NOT NULL UNIQUE,   -- rfc1459 casefolded
    display_name     text NOT NULL DEFAULT '',
    is_admin         boolean NOT NULL DEFAULT false,
    disabled         boolean NOT NULL DEFAULT false,
    -- SCRAM-SHA-256 (RFC 5802/7677): the salted keys, never the password.
    -- PLAIN logins are checked against the same keys.
    scram_iterations integer,
    scram_salt       bytea,
    scram_stored_key bytea,
    scram_server_key bytea,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((scram_iterations IS NULL) = (scram_salt IS NULL)
       AND (scram_salt IS NULL) = (scram_stored_key IS NULL)
       AND (scram_stored_key IS NULL) = (scram_server_key IS NULL))
);

-- SASL EXTERNAL: a TLS client certificate, by the lower-case hex SHA-256
-- of its DER encoding, bound to one account.
CREATE TABLE account_certs (
    fingerprint text PRIMARY KEY CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    account_id  bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    added_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX account_certs_account ON account_certs (account_id);

CREATE TABLE groups (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    name_folded text NOT NULL UNIQUE,
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE group_members (
    group_id   bigint NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, account_id)
);
CREATE INDEX group_members_account ON group_members (account_id);

CREATE TABLE categories (
    id                  bigserial PRIMARY KEY,
    name                text NOT NULL,
    name_folded         text NOT NULL UNIQUE,
    description         text NOT NULL DEFAULT '',
    -- Settings the category's rooms inherit.
    invitations_allowed boolean NOT NULL DEFAULT true,
    uploads_allowed     boolean NOT NULL DEFAULT true,
    history_kept        boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now()
);

-- allowed / denied principals and creators of a category.
CREATE TABLE category_principals (
    category_id bigint NOT NULL REFERENCES categories (id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('allowed', 'denied', 'creator')),
    kind        text NOT NULL
                CHECK (kind IN ('account', 'group', 'authenticated', 'anyone')),
    account_id  bigint REFERENCES accounts (id) ON DELETE CASCADE,
    group_id    bigint REFERENCES groups (id) ON DELETE CASCADE,
    CHECK ((kind = 'account') = (account_id IS NOT NULL)
       AND (kind = 'group') = (group_id IS NOT NULL))
);
CREATE UNIQUE INDEX category_principals_once ON category_principals
    (category_id, role, kind, coalesce(account_id, 0), coalesce(group_id, 0));

-- The default category: rooms created before the model existed, and rooms
-- created by JOIN on a server that has no other configuration, live here.
-- Anyone may join and create rooms in it, as on a plain IRC server; an
-- organisation narrows it (or creates its own categories) with pchatctl.
INSERT INTO categories (id, name, name_folded, description)
VALUES (1, 'default', 'default', 'Rooms created without a category');
SELECT setval('categories_id_seq', 1);
INSERT INTO category_principals (category_id, role, kind)
VALUES (1, 'allowed', 'anyone'), (1, 'creator', 'anyone');

ALTER TABLE rooms
    ADD COLUMN category_id bigint NOT NULL DEFAULT 1
        REFERENCES categories (id),
    ADD COLUMN description text NOT NULL DEFAULT '',
    ADD COLUMN type text NOT NULL DEFAULT 'normal'
        CHECK (type IN ('normal', 'auditorium')),
    ADD COLUMN privacy text NOT NULL DEFAULT 'open'
        CHECK (privacy IN ('open', 'closed', 'secret')),
    ADD COLUMN disabled boolean NOT NULL DEFAULT false,
    ADD COLUMN addin_url text NOT NULL DEFAULT '',
    ADD COLUMN created_by bigint REFERENCES accounts (id) ON DELETE SET NULL;
CREATE INDEX rooms_category ON rooms (category_id);

-- members, managers and presenters of a room.
CREATE TABLE room_principals (
    room_id    bigint NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('member', 'manager', 'presenter')),
    kind       text NOT NULL
               CHECK (kind IN ('account', 'group', 'authenticated', 'anyone')),
    account_id bigint REFERENCES accounts (id) ON DELETE CASCADE,
    group_id   bigint REFERENCES groups (id) ON DELETE CASCADE,
    CHECK ((kind = 'account') = (account_id IS NOT NULL)
       AND (kind = 'group') = (group_id IS NOT NULL))
);
CREATE UNIQUE INDEX room_principals_once ON room_principals
    (room_id, role, kind, coalesce(account_id, 0), coalesce(group_id, 0));
CREATE INDEX room_principals_account ON room_principals (account_id);

-- A removed message keeps its row (and seq, so history has no hole) and
-- is served as a placeholder.
ALTER TABLE messages
    ADD COLUMN removed_at timestamptz,
    ADD COLUMN removed_by text;
