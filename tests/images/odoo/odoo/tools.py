"""Configuration, logging, database and module helpers of the Odoo 17.0 stand-in.

A test double of the parts of odoo/tools/config.py, odoo/sql_db.py, odoo/service/db.py and
odoo/modules/module.py that stagelet relies on. It is not Odoo.
"""
import argparse
import ast
import configparser
import logging
import os
import re
import sys
import threading

import psycopg2

ADDONS_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'addons')
SERIES = '17.0'

# Defaults of odoo/tools/config.py (17.0). data_dir defaults to ~/.local/share/Odoo, not /var/lib/odoo.
DEFAULTS = {
    'db_name': False, 'db_host': False, 'db_port': False, 'db_user': False, 'db_password': False,
    'db_template': 'template0', 'dbfilter': '', 'list_db': True, 'admin_passwd': 'admin',
    'proxy_mode': False, 'data_dir': os.path.expanduser('~/.local/share/Odoo'), 'addons_path': '',
    'http_port': 8069, 'http_interface': '', 'gevent_port': 8072, 'workers': 0,
    'without_demo': False, 'stop_after_init': False,
}
INT_KEYS = ('db_port', 'http_port', 'gevent_port', 'workers')
# Renamed keys an old config may still use (outdated_options_map of 17.0).
RENAMED = {'xmlrpc_port': 'http_port', 'longpolling_port': 'gevent_port', 'xmlrpc_interface': 'http_interface'}
IGNORED = ('--log-level', '--logfile', '--max-cron-threads', '--limit-time-cpu', '--limit-time-real',
           '--limit-memory-soft', '--limit-memory-hard', '--limit-request', '--db_maxconn', '--db_sslmode',
           '--load-language', '--log-handler', '--smtp', '--email-from', '--dev')

config = dict(DEFAULTS)
current = threading.local()  # the database of the request being served, for log lines
_logger = logging.getLogger('odoo')


class DbFormatter(logging.Formatter):
    """Odoo's log line: `date pid LEVEL dbname logger: message`."""

    def format(self, record):
        record.pid = os.getpid()
        record.dbname = (getattr(record, 'dbname', None) or getattr(current, 'db', None)
                         or config.get('log_db_name') or '?')
        return super().format(record)


def setup_logging():
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(DbFormatter('%(asctime)s %(pid)s %(levelname)s %(dbname)s %(name)s: %(message)s'))
    logging.basicConfig(level=logging.INFO, handlers=[handler])


def _value(raw):
    if raw in ('True', 'true'):
        return True
    if raw in ('False', 'false'):
        return False
    if raw == 'None':
        return None
    return raw


def parser(prog='odoo'):
    p = argparse.ArgumentParser(prog=prog, allow_abbrev=False)
    p.add_argument('-c', '--config', dest='config')
    p.add_argument('-d', '--database', dest='db_name')
    p.add_argument('-i', '--init', dest='init')
    p.add_argument('-u', '--update', dest='update')
    p.add_argument('--stop-after-init', dest='stop_after_init', action='store_true', default=None)
    p.add_argument('--without-demo', dest='without_demo')
    p.add_argument('-r', '--db_user', dest='db_user')
    p.add_argument('-w', '--db_password', dest='db_password')
    p.add_argument('--db_host', dest='db_host')
    p.add_argument('--db_port', dest='db_port')
    p.add_argument('--db-template', dest='db_template')
    p.add_argument('--db-filter', dest='dbfilter')
    p.add_argument('--no-database-list', dest='list_db', action='store_false', default=None)
    p.add_argument('--proxy-mode', dest='proxy_mode', action='store_true', default=None)
    p.add_argument('-D', '--data-dir', dest='data_dir')
    p.add_argument('--addons-path', dest='addons_path')
    p.add_argument('-p', '--http-port', dest='http_port')
    p.add_argument('--http-interface', dest='http_interface')
    p.add_argument('--gevent-port', '--longpolling-port', dest='gevent_port')
    p.add_argument('--workers', dest='workers')
    p.add_argument('--stdout', dest='to_stdout', action='store_true')  # neutralize
    for name in IGNORED:
        p.add_argument(name, dest='ignored_' + name.strip('-').replace('-', '_'))
    return p


def parse_config(args, prog='odoo'):
    """Defaults, then the config file (-c or $ODOO_RC), then the command line, as config.py does."""
    opt = parser(prog).parse_args(args)
    rcfile = opt.config or os.environ.get('ODOO_RC') or os.path.expanduser('~/.odoorc')
    cp = configparser.RawConfigParser()
    try:
        cp.read([rcfile])  # like config.py: an unreadable or missing file is silently skipped
        for key, raw in cp.items('options'):
            config[RENAMED.get(key, key)] = _value(raw)
    except (OSError, configparser.Error):
        pass
    for key, val in vars(opt).items():
        if val is not None and key in DEFAULTS:
            config[key] = val
    for key in INT_KEYS:
        if config[key] not in (False, None, ''):
            config[key] = int(config[key])
    config['init'] = [m.strip() for m in (opt.init or '').split(',') if m.strip()]
    config['update'] = [m.strip() for m in (opt.update or '').split(',') if m.strip()]
    config['log_db_name'] = config['db_name'] or None
    return opt


def addons_paths():
    paths = [p.strip() for p in (config['addons_path'] or '').split(',') if p.strip()]
    return paths + [ADDONS_ROOT]


def check_addons_paths():
    """get_modules() of odoo/modules/module.py lists every addons path: an unreadable one raises."""
    for path in addons_paths():
        if os.path.exists(path):
            os.listdir(path)


def get_modules():
    """{name: (path, manifest)} of every folder with a __manifest__.py, the first path winning."""
    found = {}
    for path in addons_paths():
        if not os.path.exists(path):
            _logger.warning('addons path does not exist: %s', path)
            continue
        for name in sorted(os.listdir(path)):
            mf = os.path.join(path, name, '__manifest__.py')
            if name not in found and os.path.isfile(mf):
                with open(mf) as f:
                    manifest = {'installable': True, 'depends': [], 'data': [], 'version': '1.0'}
                    manifest.update(ast.literal_eval(f.read()))
                found[name] = (os.path.join(path, name), manifest)
    return found


def session_dir():
    """config.session_dir: made on first use; an existing one that is not writable is an error."""
    d = os.path.join(config['data_dir'], 'sessions')
    try:
        os.makedirs(d, 0o700)
    except FileExistsError:
        assert os.access(d, os.W_OK), '%s: directory is not writable' % d
    return d


def filestore(dbname):
    return os.path.join(config['data_dir'], 'filestore', dbname)


def connect(dbname):
    kwargs = {'dbname': dbname, 'application_name': 'odoo-%d' % os.getpid()}
    for key, arg in (('db_host', 'host'), ('db_port', 'port'), ('db_user', 'user'), ('db_password', 'password')):
        if config[key] not in (False, None, ''):
            kwargs[arg] = config[key]
    return psycopg2.connect(**kwargs)


def list_dbs():
    """service/db.py list_dbs(force=True): the databases the configured user owns."""
    if not config['dbfilter'] and config['db_name']:
        return sorted(db.strip() for db in config['db_name'].split(','))
    try:
        conn = connect('postgres')
    except psycopg2.Error:
        _logger.exception('Listing databases failed:')
        return []
    try:
        with conn.cursor() as cr:
            cr.execute("SELECT datname FROM pg_database WHERE datdba = (SELECT usesysid FROM pg_user"
                       " WHERE usename = current_user) AND NOT datistemplate AND datallowconn"
                       " AND datname NOT IN %s ORDER BY datname", (tuple({'postgres', config['db_template']}),))
            return [r[0] for r in cr.fetchall()]
    finally:
        conn.close()


def db_filter(dbs, host=''):
    """http.py db_filter: dbfilter (with %h/%d) first, else the -d list, else everything."""
    if config['dbfilter']:
        host = (host or '').partition(':')[0]
        if host.startswith('www.'):
            host = host[4:]
        domain = host.partition('.')[0]
        pattern = config['dbfilter'].replace('%h', re.escape(host)).replace('%d', re.escape(domain))
        return [db for db in dbs if re.match(pattern, db)]
    if config['db_name']:
        exposed = {db.strip() for db in config['db_name'].split(',')}
        return sorted(exposed.intersection(dbs))
    return list(dbs)
