#!/usr/bin/python3
# Stand-in for odoo/docker 17.0/wait-for-psql.py: retries a connection to the `postgres` database
# until it works or --timeout seconds pass.
import argparse
import sys
import time

import psycopg2

if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--db_host', required=True)
    p.add_argument('--db_port', required=True)
    p.add_argument('--db_user', required=True)
    p.add_argument('--db_password', required=True)
    p.add_argument('--timeout', type=int, default=5)
    args = p.parse_args()
    start = time.time()
    error = ''
    while (time.time() - start) < args.timeout:
        try:
            conn = psycopg2.connect(user=args.db_user, host=args.db_host, port=args.db_port,
                                    password=args.db_password, dbname='postgres')
            error = ''
            break
        except psycopg2.OperationalError as e:
            error = e
        else:
            conn.close()
        time.sleep(1)
    if error:
        print("Database connection failure: %s" % error, file=sys.stderr)
        sys.exit(1)
