#!/usr/bin/env python3
"""Writes re6st-registry.db: a registry database laid out as re6st's Python
registry creates it (same CREATE TABLE text, built the way re6st's
sqliteCreateTable joins the column definitions), with a few rows of each
kind. Uses only the Python standard library; run from this directory:

    python3 make-re6st-db.py
"""
import os
import sqlite3

PATH = "re6st-registry.db"


def create_table(db, name, *columns):
    db.execute("CREATE TABLE %s (%s)" % (name, ",".join("\n  " + c for c in columns)))


if os.path.exists(PATH):
    os.unlink(PATH)
db = sqlite3.connect(PATH, isolation_level=None)
create_table(db, "config", "name TEXT PRIMARY KEY NOT NULL", "value")
create_table(db, "token", "token TEXT PRIMARY KEY NOT NULL", "email TEXT NOT NULL",
             "prefix_len INTEGER NOT NULL", "date INTEGER NOT NULL")
create_table(db, "cert", "prefix TEXT PRIMARY KEY NOT NULL", "email TEXT", "cert TEXT")
create_table(db, "crl", "serial INTEGER PRIMARY KEY NOT NULL", "date INTEGER NOT NULL")
db.execute("INSERT INTO config VALUES ('prefix', '0000000000000001')")
db.execute("INSERT INTO config VALUES ('serial', 7)")
db.execute("INSERT INTO config VALUES ('babel_hmac0', ?)", (bytes(range(16)),))
db.execute("INSERT INTO config VALUES ('version', ?)", (b"\x05" + b"\xaa" * 256,))
db.execute("INSERT INTO token VALUES ('abcdefgh', 'a@example.com', 16, 1700000000)")
# The network is split as re6st's allocator leaves it after two /16s.
db.executemany("INSERT INTO cert VALUES (?,?,?)", [
    ("0000000000000000", None, "reserved"),
    ("0000000000000001", None, "-----BEGIN CERTIFICATE-----\n(node 1)\n-----END CERTIFICATE-----\n"),
    ("0000000000000010", "b@example.com", "-----BEGIN CERTIFICATE-----\n(node 2)\n-----END CERTIFICATE-----\n"),
    ("0000000000000011", None, None),
    ("00000000000001", None, None),
    ("0000000000001", None, None),
    ("000000000001", None, None),
    ("00000000001", None, None),
    ("0000000001", None, None),
    ("000000001", None, None),
    ("00000001", None, None),
    ("0000001", None, None),
    ("000001", None, None),
    ("00001", None, None),
    ("0001", None, None),
    ("001", None, None),
    ("01", None, None),
    ("1", None, None),
])
db.execute("INSERT INTO crl VALUES (3, 1900000000)")
db.close()
