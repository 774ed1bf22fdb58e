"""pchat_post(), the group-commit function, called directly: fresh posts
get consecutive seqs per room, a retried batch (some msgids stored
already) returns the stored seqs and stores only the rest, and a post to a
room that does not exist gets no seq."""

import uuid


def post(pg, db, rows):
    """rows: (msgid, room_id, body); returns [(msgid, seq, inserted)]."""
    arr = lambda xs, t: "ARRAY[%s]::%s[]" % (", ".join(xs), t)
    sql = ("SELECT msgid, coalesce(seq::text, 'NULL'), inserted FROM pchat_post(%s, %s, %s, %s, %s, %s, %s, %s)"
           % (arr(["'%s'" % m for m, _, _ in rows], "uuid"),
              arr([str(r) for _, r, _ in rows], "bigint"),
              arr(["1700000000000"] * len(rows), "bigint"),
              arr(["0"] * len(rows), "smallint"),
              arr(["'n!u@h'"] * len(rows), "text"),
              arr(["NULL"] * len(rows), "text"),
              arr(["'%s'" % b for _, _, b in rows], "text"),
              arr(["''"] * len(rows), "text")))
    out = pg.psql(sql, db=db)
    return [tuple(line.split("|")) for line in out.splitlines()]


def test_post_fresh_retry_and_missing_room(postgres):
    db, _ = postgres.new_database()
    a = postgres.psql("INSERT INTO rooms (name, name_folded) VALUES ('#a', '#a') RETURNING id", db=db)
    b = postgres.psql("INSERT INTO rooms (name, name_folded) VALUES ('#b', '#b') RETURNING id", db=db)
    m = [str(uuid.uuid4()) for _ in range(6)]

    got = post(postgres, db, [(m[0], a, "one"), (m[1], b, "two"),
                              (m[2], a, "three"), (m[3], 999999, "lost")])
    assert got == [(m[0], "1", "t"), (m[1], "1", "t"), (m[2], "2", "t"),
                   (m[3], "NULL", "f")]

    # A retry after an unknown outcome: two stored, two new, in one batch.
    got = post(postgres, db, [(m[2], a, "three"), (m[4], a, "four"),
                              (m[0], a, "one"), (m[5], b, "five")])
    assert got == [(m[2], "2", "f"), (m[4], "3", "t"), (m[0], "1", "f"),
                   (m[5], "2", "t")]

    assert postgres.psql("SELECT string_agg(r.name || '=' || r.last_seq, ',' ORDER BY r.id) FROM rooms r",
                         db=db) == "#a=3,#b=2"
    assert postgres.psql("SELECT string_agg(body, ',' ORDER BY room_id, seq) FROM messages",
                         db=db) == "one,three,four,two,five"
    # Each batch is one transaction: its rows share an xmin (the bench's
    # batch-size report counts on it).
    assert postgres.psql("SELECT string_agg(n::text, ',' ORDER BY n) FROM "
                         "(SELECT count(*) AS n FROM messages GROUP BY xmin::text) x",
                         db=db) == "2,3"
