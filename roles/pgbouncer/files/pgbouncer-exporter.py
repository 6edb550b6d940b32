"""Debian's prometheus-pgbouncer-exporter 1.7, made to work with bookworm's PgBouncer 1.18.

The package reads SHOW STATS' `total_requests`, which PgBouncer 1.8 replaced with total_query_count and
total_xact_count: its StatsCollector raises KeyError, and since prometheus_client collects once when a
collector is registered, the packaged exporter dies at start. Its single connection, opened at start,
is also never reopened. This runs the package's own code with:
- the SHOW STATS columns of PgBouncer >= 1.8;
- a connection opened on demand and reopened after an error;
- pgbouncer_up: 1 when PgBouncer answered this scrape, else 0 (the other series are then absent).
"""
import logging

import psycopg2
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_pgbouncer_exporter import cli, collectors

collectors.StatsCollector.metrics = {
    "total_query_count": ("queries_total", "Total number of SQL queries pooled by pgbouncer"),
    "total_xact_count": ("transactions_total", "Total number of SQL transactions pooled by pgbouncer"),
    "total_received": ("received_bytes_total", "Total volume in bytes of network traffic received by pgbouncer"),
    "total_sent": ("sent_bytes_total", "Total volume in bytes of network traffic sent by pgbouncer"),
    "total_query_time": ("query_microseconds_total", "Total microseconds pgbouncer was actively connected to PostgreSQL"),
    "total_xact_time": ("transaction_microseconds_total", "Total microseconds spent in transactions"),
    "total_wait_time": ("wait_microseconds_total", "Total microseconds clients waited for a server"),
}


class ReopeningConnection:
    """Stands in for the package's psycopg2 connection: connects when first used and again after a failure."""

    def __init__(self, user, port, host):
        self.args = dict(database="pgbouncer", user=user, port=port, host=host)
        self.connection = None

    def cursor(self):
        if self.connection is None or self.connection.closed:
            self.connection = psycopg2.connect(**self.args)
            # PgBouncer's console has no transactions.
            self.connection.set_session(autocommit=True)
        return self.connection.cursor()

    def drop(self):
        if self.connection is not None:
            try:
                self.connection.close()
            except psycopg2.Error:
                pass
        self.connection = None

    def close(self):
        self.drop()


class UpCollector:
    def __init__(self, connection):
        self.connection = connection

    def collect(self):
        try:
            with self.connection.cursor() as cursor:
                cursor.execute("SHOW VERSION;")
                cursor.fetchall()
            up = 1
        except psycopg2.Error as error:
            logging.warning("PgBouncer did not answer: %s", error)
            self.connection.drop()
            up = 0
        yield GaugeMetricFamily("pgbouncer_up", "1 when PgBouncer answered the exporter's last scrape", value=up)


def _guarded(collect):
    """A collector whose query fails yields nothing this scrape (pgbouncer_up says why) instead of an HTTP 500."""
    def guarded(self):
        try:
            return list(collect(self))
        except psycopg2.Error as error:
            logging.warning("%s failed: %s", type(self).__name__, error)
            self.connection.drop()
            return []
    return guarded


for _collector in (collectors.StatsCollector, collectors.PoolsCollector, collectors.DatabasesCollector,
                   collectors.ListsCollector):
    _collector.collect = _guarded(_collector.collect)


def _connection(user, port, host):
    connection = ReopeningConnection(user, port, host)
    REGISTRY.register(UpCollector(connection))
    return connection


cli.get_connection = _connection

if __name__ == "__main__":
    cli.main()
