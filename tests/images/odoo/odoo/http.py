"""HTTP side of the stand-in: the routes of odoo/http.py and addons/web/controllers stagelet relies on.

Served by python3's threaded http.server on http_port (and gevent_port when workers > 0).
"""
import html
import json
import logging
import os
import secrets
import shutil
import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2
from psycopg2 import sql

from . import tools
from .cli import crypt_context
from .tools import config

_logger = logging.getLogger('odoo.http')
_werkzeug = logging.getLogger('werkzeug')
_failures = {}  # (db, client address) -> (count, time of the last failure): the login cooldown
DISABLED = 'The database manager has been disabled by the administrator'
INSECURE = 'Warning, your Odoo database manager is not protected. Please set a master password to secure it.'


def page(body, title='Odoo'):
    return ('<!DOCTYPE html><html><head><title>%s</title></head><body>%s</body></html>\n'
            % (title, body)).encode()


class Handler(BaseHTTPRequestHandler):
    server_version = 'Werkzeug/2.0.2 Python/3'
    evented = False  # the gevent_port server answers /websocket
    db = None

    # http.py runs werkzeug's ProxyFix with its defaults (x_for=1, x_proto=1; Host is left alone),
    # and only with proxy_mode AND an X-Forwarded-Host header.
    def proxied(self):
        return bool(config['proxy_mode'] and self.headers.get('X-Forwarded-Host'))

    def client(self):
        xff = self.headers.get('X-Forwarded-For')
        if self.proxied() and xff:
            return xff.split(',')[-1].strip()
        return self.client_address[0]

    def host(self):
        return self.headers.get('Host', '')

    def log_request(self, code='-', size='-'):
        tools.current.db = self.db
        _werkzeug.info('%s - - [%s] "%s" %s -', self.client(), self.log_date_time_string(), self.requestline, code)

    def log_message(self, fmt, *args):
        pass

    def send(self, status, body=b'', ctype='text/html; charset=utf-8', headers=()):
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)

    def redirect(self, location, headers=()):
        self.send(303, page('<a href="%s">Redirecting</a>' % html.escape(location)),
                  headers=[('Location', location)] + list(headers))

    # Sessions live in <data_dir>/sessions, one file each.
    def load_session(self):
        cookie = self.headers.get('Cookie', '')
        sid = None
        for part in cookie.split(';'):
            key, _, value = part.strip().partition('=')
            if key == 'session_id' and value.isalnum():
                sid = value
        path = os.path.join(tools.session_dir(), sid) if sid else None
        if path and os.path.isfile(path):
            with open(path) as f:
                return sid, json.load(f)
        return secrets.token_hex(20), {}

    def save_session(self, sid, session):
        with open(os.path.join(tools.session_dir(), sid), 'w') as f:
            json.dump(session, f)
        return [('Set-Cookie', 'session_id=%s; HttpOnly; Path=/; SameSite=Lax' % sid)]

    def request_db(self, session):
        dbs = tools.db_filter(tools.list_dbs(), self.host())
        db = session['db'] if session.get('db') in dbs else (dbs[0] if len(dbs) == 1 else None)
        tools.current.db = db
        return db

    def form(self):
        length = int(self.headers.get('Content-Length') or 0)
        raw = self.rfile.read(length).decode() if length else ''
        if self.headers.get('Content-Type', '').startswith('application/json'):
            return json.loads(raw or '{}')
        return {k: v[-1] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def dispatch(self):
        self.db = tools.current.db = None
        url = urllib.parse.urlsplit(self.path)
        self.query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        route = url.path.rstrip('/') or '/'
        try:
            if route == '/web/health':
                return self.health()
            if route == '/websocket':
                return self.websocket()
            if route in ('/web/database/manager', '/web/database/selector'):
                return self.manager(manage=route.endswith('manager'))
            if route == '/web/database/drop' and self.command == 'POST':
                return self.drop()
            if route == '/web/login':
                return self.login()
            if route == '/web/session/authenticate' and self.command == 'POST':
                return self.authenticate()
            if route.startswith('/web/content/') and route.rsplit('/', 1)[1].isdigit():
                return self.content(int(route.rsplit('/', 1)[1]))
            if route in ('/', '/web', '/odoo'):
                sid, session = self.load_session()
                if session.get('uid') and route != '/':
                    return self.send(200, page('<div class="o_web_client">%s</div>' % html.escape(session['login'])))
                return self.redirect('/web' if session.get('uid') else '/web/login')
            self.send(404, page('<h1>Not Found</h1>'), headers=())
        except Exception:
            _logger.exception('Exception during request handling.')
            self.send(500, page('<h1>Internal Server Error</h1>'))

    # addons/web/controllers/home.py: /web/health, with ?db_server_status=1 probing PostgreSQL.
    def health(self):
        info, status = {'status': 'pass'}, 200
        if self.query.get('db_server_status'):
            try:
                tools.connect('postgres').close()
                info['db_server_status'] = True
            except psycopg2.Error:
                info.update(db_server_status=False, status='fail')
                status = 500
        self.send(status, json.dumps(info).encode(), 'application/json', [('Cache-Control', 'no-store')])

    # The websocket lives on the evented port when workers > 0 (http.py / websocket controller).
    def websocket(self):
        if config['workers'] and not self.evented:
            return self.send(500, b"Couldn't bind the websocket. Is the connection opened on the evented port (8072)?",
                             'text/plain')
        self.send(200, json.dumps({'websocket': True, 'port': self.server.server_address[1]}).encode(),
                  'application/json')

    # addons/web/controllers/database.py: 200 in both cases; with list_db off only the notice.
    def manager(self, manage):
        if not config['list_db']:
            return self.send(200, page('<div class="alert alert-danger text-center">%s</div>' % DISABLED))
        dbs = tools.db_filter(tools.list_dbs(), self.host())
        body = '<h2>%s</h2>' % ('Manage databases' if manage else 'Select a database')
        if config['admin_passwd'] and crypt_context.verify('admin', config['admin_passwd']):
            body += '<div class="alert alert-warning">%s</div>' % INSECURE
        body += '<ul>%s</ul>' % ''.join('<li><a href="/web?db=%s">%s</a></li>' % (html.escape(d), html.escape(d))
                                        for d in dbs)
        if manage:
            body += ('<form method="post" action="/web/database/drop"><input name="master_pwd" type="password"/>'
                     '<input name="name"/><button type="submit">Delete</button></form>')
        self.send(200, page(body))

    def drop(self):
        data = self.form()
        name = data.get('name', '')
        try:
            if not config['admin_passwd'] or not crypt_context.verify(data.get('master_pwd', ''),
                                                                      config['admin_passwd']):
                raise PermissionError('Access Denied')
            if not config['list_db']:
                raise PermissionError('Database management functionality is disabled.')
            conn = tools.connect('postgres')
            conn.autocommit = True
            with conn.cursor() as cr:
                cr.execute('SELECT pg_terminate_backend(pid) FROM pg_stat_activity'
                           ' WHERE datname = %s AND pid != pg_backend_pid()', (name,))
                cr.execute(sql.SQL('DROP DATABASE {}').format(sql.Identifier(name)))
            conn.close()
            shutil.rmtree(tools.filestore(name), ignore_errors=True)
            _logger.info('DROP DB: %s', name)
            return self.redirect('/web/database/manager')
        except (PermissionError, psycopg2.Error) as e:
            self.send(200, page('<div class="alert alert-danger">Database deletion error: %s</div>'
                                % html.escape(str(e).strip())))

    def check_login(self, db, login, password):
        """res_users._login with the cooldown of _on_login_cooldown (5 failures, 60 s, per address)."""
        key = (db, self.client())
        tools.current.db = db
        count, last = _failures.get(key, (0, 0))
        if count >= 5 and time.time() - last < 60:
            _logger.warning('Login attempt ignored for %s on %s: %d failures since last success',
                            self.client(), db, count)
            raise PermissionError('Too many login failures, please wait a bit before trying again.')
        conn = tools.connect(db)
        try:
            with conn, conn.cursor() as cr:
                cr.execute('SELECT id, password FROM res_users WHERE login = %s AND active', (login,))
                row = cr.fetchone()
                ok, new_hash = crypt_context.verify_and_update(password, row[1]) if row and row[1] else (False, None)
                if ok and new_hash:
                    cr.execute('UPDATE res_users SET password = %s WHERE id = %s', (new_hash, row[0]))
        finally:
            conn.close()
        if not ok:
            _failures[key] = (count + 1, time.time())
            _logger.info('Login failed for db:%s login:%s from %s', db, login, self.client())
            raise PermissionError('Wrong login/password')
        _failures.pop(key, None)
        _logger.info('Login successful for db:%s login:%s from %s', db, login, self.client())
        return row[0]

    # addons/web/controllers/home.py web_login: a form with a CSRF token; 303 to /web on success.
    def login(self):
        sid, session = self.load_session()
        self.db = self.request_db(session)
        wanted = self.query.get('db')
        if wanted and wanted in tools.db_filter(tools.list_dbs(), self.host()):
            session['db'] = self.db = wanted
        if not self.db:
            return self.redirect('/web/database/selector')
        error = ''
        if self.command == 'POST':
            data = self.form()
            if not session.get('csrf') or data.get('csrf_token') != session['csrf']:
                return self.send(400, page('<p>Session expired (invalid CSRF token)</p>'))
            try:
                uid = self.check_login(self.db, data.get('login', ''), data.get('password', ''))
                session.update(db=self.db, uid=uid, login=data.get('login'))
                return self.redirect(data.get('redirect') or '/web', self.save_session(sid, session))
            except PermissionError as e:
                error = str(e)
        session['csrf'] = secrets.token_hex(20)
        body = ('<form method="post" action="/web/login"><input type="hidden" name="csrf_token" value="%s"/>'
                '<input name="login"/><input name="password" type="password"/>%s</form>'
                % (session['csrf'], '<p class="alert alert-danger">%s</p>' % html.escape(error) if error else ''))
        self.send(200, page(body), headers=self.save_session(sid, session))

    # /web/session/authenticate (type json): {"params": {"db", "login", "password"}}.
    def authenticate(self):
        params = self.form().get('params', {})
        sid, session = self.load_session()
        self.db = params.get('db')
        if not tools.db_filter([self.db], self.host()):
            return self.rpc_error('odoo.exceptions.AccessError', 'Database not found.')
        try:
            uid = self.check_login(self.db, params.get('login', ''), params.get('password', ''))
        except PermissionError as e:
            return self.rpc_error('odoo.exceptions.AccessDenied', 'Access Denied' if 'Wrong' in str(e) else str(e))
        session.update(db=self.db, uid=uid, login=params.get('login'))
        body = {'jsonrpc': '2.0', 'id': None, 'result': {'uid': uid, 'db': self.db}}
        self.send(200, json.dumps(body).encode(), 'application/json', self.save_session(sid, session))

    def rpc_error(self, name, message):
        body = {'jsonrpc': '2.0', 'id': None, 'error': {'code': 200, 'message': 'Odoo Server Error',
                                                        'data': {'name': name, 'message': message}}}
        self.send(200, json.dumps(body).encode(), 'application/json')

    # /web/content/<id>: the attachment's bytes, from <data_dir>/filestore/<db>/<store_fname>.
    def content(self, att_id):
        sid, session = self.load_session()
        self.db = self.request_db(session)
        if not self.db:
            return self.send(404, page('<h1>Not Found</h1>'))
        conn = tools.connect(self.db)
        try:
            with conn.cursor() as cr:
                cr.execute('SELECT name, public, store_fname, db_datas, mimetype FROM ir_attachment WHERE id = %s',
                           (att_id,))
                row = cr.fetchone()
        finally:
            conn.close()
        if not row or not (row[1] or session.get('uid')):
            return self.send(404, page('<h1>Not Found</h1>'))
        name, _, fname, datas, mimetype = row
        if fname:
            path = os.path.join(tools.filestore(self.db), fname)
            try:
                with open(path, 'rb') as f:
                    datas = f.read()
            except OSError:
                logging.getLogger('odoo.addons.base.models.ir_attachment').info('_read_file reading %s', path,
                                                                                 exc_info=True)
                return self.send(404, page('<h1>Not Found</h1>'))
        self.send(200, bytes(datas or b''), mimetype or 'application/octet-stream',
                  [('Content-Disposition', 'inline; filename="%s"' % name.replace('"', ''))])


class EventedHandler(Handler):
    evented = True


def serve():
    tools.session_dir()  # the session store needs <data_dir>/sessions writable
    iface = config['http_interface'] or '0.0.0.0'
    servers = [ThreadingHTTPServer((iface, config['http_port']), Handler)]
    _logger.info('HTTP service (werkzeug) running on %s:%s', iface, config['http_port'])
    if config['workers']:
        servers.append(ThreadingHTTPServer((iface, config['gevent_port']), EventedHandler))
        _logger.info('Evented Service (longpolling) running on %s:%s', iface, config['gevent_port'])
    for srv in servers:
        srv.daemon_threads = True
    for srv in servers[1:]:
        threading.Thread(target=srv.serve_forever, daemon=True).start()

    def stop(signum, frame):
        logging.getLogger('odoo.service.server').info('Initiating shutdown')
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    servers[0].serve_forever()
