"""`id__in_array=[...]`: an integer column in a list sent as one parameter, not one per item.

A page of a thousand builds then reads its rows and their tasks by id; as `IN (%s, %s, …)`
each list costs the ORM (a lookup per value) and psycopg (which parses again every query
too long for its cache) some 10 ms of CPU. One array (PostgreSQL) or one JSON document
(SQLite) costs nothing, and the query text stays the same for every page.
"""

import json

from django.db.models import IntegerField, Lookup


@IntegerField.register_lookup
class InArray(Lookup):
    lookup_name = "in_array"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        # The array's text form: psycopg would otherwise inspect and dump every item.
        array = "{" + ",".join(map(str, map(int, self.rhs))) + "}"
        return f"{lhs} = ANY(%s::bigint[])", [*lhs_params, array]

    def as_sqlite(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = json.dumps([int(v) for v in self.rhs])
        sql = f"{lhs} IN (SELECT value FROM json_each(%s))"  # noqa: S608 (lhs: a quoted column)
        return sql, [*lhs_params, values]
