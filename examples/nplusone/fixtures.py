"""
Fixtures of the nplusone port, written with plain SQL through a connection
of their own (so no fixture statement lands in a case's request).

nplusone's fixture is one user with one address and one hobby; an N+1 needs a
loop, so the loops here run over two of them (nplusone reports from the
second lazy load), and over four for the server-side cursors.
"""
TABLES = '"user", address, hobby, users_hobbies'


def reset(cur):
    cur.execute('TRUNCATE %s RESTART IDENTITY CASCADE' % TABLES)


def users_with_address_and_hobby(cur, n=2):
    """n users, user i with address i and hobby i (nplusone's `objects`, n times)."""
    reset(cur)
    for _ in range(n):
        cur.execute('INSERT INTO "user" DEFAULT VALUES')
        cur.execute('INSERT INTO hobby DEFAULT VALUES')
    for i in range(1, n + 1):
        cur.execute('INSERT INTO address (user_id) VALUES (%s)', (i,))
        cur.execute('INSERT INTO users_hobbies (user_id, hobby_id) VALUES (%s, %s)', (i, i))


def four_users(cur):
    users_with_address_and_hobby(cur, 4)


def one_owner_three_addresses(cur):
    """Two users; all three addresses belong to user 1."""
    reset(cur)
    cur.execute('INSERT INTO "user" DEFAULT VALUES')
    cur.execute('INSERT INTO "user" DEFAULT VALUES')
    for _ in range(3):
        cur.execute('INSERT INTO address (user_id) VALUES (1)')
