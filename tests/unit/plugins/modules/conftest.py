# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest


@pytest.fixture
def schema(pg_conn):
    """A schema_migrations table holding one old version; dropped afterwards."""
    cur = pg_conn.cursor()
    cur.execute('DROP TABLE IF EXISTS schema_migrations')
    cur.execute('CREATE TABLE schema_migrations (version character varying PRIMARY KEY)')
    cur.execute("INSERT INTO schema_migrations VALUES ('20240101000000')")
    yield cur
    cur.execute('DROP TABLE IF EXISTS schema_migrations')
