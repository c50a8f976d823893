"""Commands of the stand-in: `odoo [server]` (with -d, -i, -u, --stop-after-init) and `odoo neutralize`.

Follows odoo/cli/command.py, odoo/cli/server.py, odoo/cli/neutralize.py, odoo/modules/loading.py and
odoo/modules/neutralize.py of Odoo 17.0, only as far as stagelet relies on them.
"""
import datetime
import hashlib
import logging
import os
import sys
import uuid

import psycopg2
from psycopg2 import errorcodes, sql
from passlib.context import CryptContext

from . import tools
from .tools import config

_logger = logging.getLogger('odoo.modules.loading')
# res_users.py of 17.0: pbkdf2_sha512 with 600,000 rounds; plaintext accepted but deprecated.
crypt_context = CryptContext(['pbkdf2_sha512', 'plaintext'], deprecated=['plaintext'],
                             pbkdf2_sha512__rounds=600_000)


def create_empty_database(name):
    """service/db.py _create_empty_database: True when it made the database."""
    conn = tools.connect('postgres')
    conn.autocommit = True
    try:
        with conn.cursor() as cr:
            cr.execute('SELECT datname FROM pg_database WHERE datname = %s', (name,))
            if cr.fetchall():
                return False
            cr.execute(sql.SQL("CREATE DATABASE {} ENCODING 'unicode' LC_COLLATE 'C' TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(config['db_template'])))
            return True
    except psycopg2.ProgrammingError as err:
        if err.pgcode == errorcodes.INSUFFICIENT_PRIVILEGE:
            logging.getLogger('odoo.service.server').info(
                'Could not determine if database %s exists, skipping auto-creation: %s', name, err)
            return False
        raise
    finally:
        conn.close()


def is_initialized(cr):
    cr.execute("SELECT 1 FROM pg_class WHERE relname = 'ir_module_module' AND relkind = 'r'")
    return bool(cr.fetchall())


def module_version(manifest):
    version = str(manifest.get('version', '1.0'))
    return version if version.startswith(tools.SERIES + '.') else '%s.%s' % (tools.SERIES, version)


def init_base(cr, dbname, modules):
    """What -i base leaves behind: admin/admin, the database secrets, base and web installed."""
    with open(os.path.join(tools.ADDONS_ROOT, 'base', 'data', 'schema.sql')) as f:
        cr.execute(f.read())
    cr.execute("UPDATE res_users SET password = %s WHERE login = 'admin'", (crypt_context.hash('admin'),))
    params = {
        'database.uuid': str(uuid.uuid1()), 'database.secret': str(uuid.uuid4()),
        'database.create_date': datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M:%S'),
        'web.base.url': 'http://localhost:%s' % config['http_port'],
        'base.login_cooldown_after': '5', 'base.login_cooldown_duration': '60',
    }
    for key, value in params.items():
        cr.execute('INSERT INTO ir_config_parameter (key, value) VALUES (%s, %s)', (key, value))
    for name in ('base', 'web'):
        cr.execute("INSERT INTO ir_module_module (name, state, latest_version, auto_install)"
                   " VALUES (%s, 'installed', %s, true)", (name, module_version(modules[name][1])))
    # Installing base writes attachments to the filestore (the company logo among them).
    data = b'stand-in company logo\n'
    checksum = hashlib.sha1(data).hexdigest()
    fname = '%s/%s' % (checksum[:2], checksum)
    path = os.path.join(tools.filestore(dbname), fname)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)
    cr.execute("INSERT INTO ir_attachment (name, res_model, res_id, public, store_fname, file_size, checksum,"
               " mimetype) VALUES ('logo.txt', 'res.company', 1, true, %s, %s, %s, 'text/plain')",
               (fname, len(data), checksum))


def update_list(cr, modules):
    """ir.module.module update_list: new folders appear as uninstalled (or uninstallable)."""
    cr.execute('SELECT name, state FROM ir_module_module')
    known = dict(cr.fetchall())
    for name, (_, manifest) in modules.items():
        state = 'uninstalled' if manifest['installable'] else 'uninstallable'
        if name not in known:
            cr.execute('INSERT INTO ir_module_module (name, state, latest_version) VALUES (%s, %s, %s)',
                       (name, state, module_version(manifest)))
        elif known[name] in ('uninstalled', 'uninstallable'):
            cr.execute('UPDATE ir_module_module SET state = %s WHERE name = %s', (state, name))


def ordered(names, modules):
    """Dependencies first, as the module graph loads them."""
    done = []

    def visit(name, seen=()):
        if name in done or name in seen or name not in names:
            return
        for dep in modules[name][1].get('depends', []):
            visit(dep, seen + (name,))
        done.append(name)

    for name in sorted(names):
        visit(name)
    return done


def load_data(cr, name, path, manifest):
    """convert_file: a .sql data file is executed as is; the stand-in ignores other kinds."""
    for rel in manifest.get('data', []):
        if rel.endswith('.sql'):
            with open(os.path.join(path, rel)) as f:
                cr.execute(f.read())
        else:
            _logger.info('module %s: stand-in ignores data file %s', name, rel)


def load_modules(dbname, init, update):
    """Install -i, upgrade installed -u; each module is committed when loaded, like the real loader."""
    conn = tools.connect(dbname)
    try:
        cr = conn.cursor()
        modules = tools.get_modules()
        if not is_initialized(cr):
            if 'base' not in init:
                _logger.error('Database %s not initialized, you can force it with `-i base`', dbname)
                return 0
            _logger.info('init db')
            init_base(cr, dbname, modules)
            conn.commit()
        if not init and not update:
            return 0
        _logger.info('updating modules list')
        update_list(cr, modules)
        conn.commit()
        unknown = [m for m in init + update if m not in modules and m != 'all']
        if unknown:
            logging.getLogger('odoo.modules.loading').warning('invalid module names, ignored: %s',
                                                              ', '.join(unknown))
        cr.execute('SELECT name, state FROM ir_module_module')
        states = dict(cr.fetchall())
        todo = {m for m in init if states.get(m) in ('uninstalled', 'uninstallable')}
        todo |= {m for m, s in states.items() if s in ('installed', 'to upgrade')
                 and ('all' in update or m in update or m in init)}
        skipped = []
        for name in ordered(todo, modules):
            path, manifest = modules[name]
            if not manifest['installable']:
                logging.getLogger('odoo.modules.graph').warning('module %s: not installable, skipped', name)
                cr.execute("UPDATE ir_module_module SET state = %s WHERE name = %s",
                           ('to upgrade' if states[name] == 'installed' else 'to install', name))
                conn.commit()
                skipped.append(name)
                continue
            _logger.info('Loading module %s', name)
            load_data(cr, name, path, manifest)
            cr.execute("UPDATE ir_module_module SET state = 'installed', latest_version = %s,"
                       " write_date = now() at time zone 'UTC' WHERE name = %s", (module_version(manifest), name))
            conn.commit()
        if skipped:
            _logger.error('Some modules have inconsistent states, some dependencies may be missing: %s',
                          sorted(skipped))
            return 1
        return 0
    except Exception:
        conn.rollback()
        logging.getLogger('odoo.service.server').critical('Failed to initialize database `%s`.', dbname,
                                                          exc_info=True)
        return -1
    finally:
        conn.close()


def server(args):
    tools.parse_config(args)
    tools.setup_logging()
    log = logging.getLogger('odoo')
    if os.geteuid() == 0:
        sys.stderr.write("Running as user 'root' is a security risk.\n")
    if config['db_user'] == 'postgres':
        sys.stderr.write("Using the database user 'postgres' is a security risk, aborting.")
        sys.exit(1)
    log.info('Odoo version %s (stagelet stand-in)', tools.SERIES)
    log.info('addons paths: %s', tools.addons_paths())
    log.info('database: %s@%s:%s', config['db_user'] or 'default', config['db_host'] or 'default',
             config['db_port'] or 'default')
    tools.check_addons_paths()
    rc = 0
    for dbname in [d.strip() for d in (config['db_name'] or '').split(',') if d.strip()]:
        init = list(config['init'])
        if create_empty_database(dbname) and 'base' not in init:
            init.append('base')
        rc = load_modules(dbname, init, config['update']) or rc
    if config['stop_after_init']:
        sys.exit(rc)
    from . import http
    http.serve()


def neutralize(args):
    opt = tools.parse_config(args, prog='odoo neutralize')
    tools.setup_logging()
    log = logging.getLogger('odoo.cli.neutralize')
    dbname = config['db_name']
    if not dbname:
        log.error('Neutralize command needs a database name. Use "-d" argument')
        sys.exit(1)
    if not opt.to_stdout:
        log.info('Starting %s database neutralization', dbname)
    try:
        conn = tools.connect(dbname)
        with conn, conn.cursor() as cr:
            cr.execute("SELECT name FROM ir_module_module WHERE state IN ('installed', 'to upgrade', 'to remove')")
            installed = [r[0] for r in cr.fetchall()]
            modules = tools.get_modules()
            queries = []
            for name in installed:
                path = os.path.join(modules[name][0], 'data', 'neutralize.sql') if name in modules else None
                if path and os.path.isfile(path):
                    with open(path) as f:
                        queries.append(f.read())
            if opt.to_stdout:
                print('BEGIN;')
                for query in queries:
                    print(query.rstrip().rstrip(';') + ';')
                print('COMMIT;')
            else:
                logging.getLogger('odoo.modules.neutralize').info('Neutralizing database')
                for query in queries:
                    cr.execute(query)
                logging.getLogger('odoo.modules.neutralize').info('Neutralization finished')
        conn.close()
    except Exception:
        log.critical('An error occurred during the neutralization. THE DATABASE IS NOT NEUTRALIZED!',
                     exc_info=True)
        sys.exit(1)


def main():
    args = sys.argv[1:]
    command = 'server'
    if args and not args[0].startswith('-'):
        command, args = args[0], args[1:]
    if command == 'server':
        server(args)
    elif command == 'neutralize':
        neutralize(args)
    else:
        sys.stderr.write("Unknown command %r.\n\nUse 'odoo --help' to see the list of available commands.\n"
                         % command)
        sys.exit(1)
