-- The part of the schema `-i base` creates that stagelet relies on (the real ORM makes many more
-- tables and columns). Column names, NOT NULL and UNIQUE follow the 17.0 models.
CREATE TABLE ir_module_module (
    id serial PRIMARY KEY,
    name varchar NOT NULL UNIQUE,
    state varchar,
    latest_version varchar,
    auto_install boolean,
    write_date timestamp DEFAULT (now() at time zone 'UTC')
);
CREATE TABLE ir_model_data (
    id serial PRIMARY KEY,
    module varchar NOT NULL,
    name varchar NOT NULL,
    model varchar NOT NULL,
    res_id integer
);
CREATE TABLE res_users (
    id serial PRIMARY KEY,
    login varchar NOT NULL UNIQUE,
    password varchar,
    active boolean DEFAULT true,
    share boolean,
    write_date timestamp DEFAULT (now() at time zone 'UTC')
);
CREATE TABLE ir_config_parameter (
    id serial PRIMARY KEY,
    key varchar NOT NULL UNIQUE,
    value text NOT NULL
);
CREATE TABLE ir_mail_server (
    id serial PRIMARY KEY,
    name varchar NOT NULL,
    from_filter varchar,
    smtp_host varchar,
    smtp_port integer,
    smtp_authentication varchar NOT NULL,
    smtp_user varchar,
    smtp_pass varchar,
    smtp_encryption varchar NOT NULL,
    sequence integer,
    active boolean
);
CREATE TABLE ir_cron (
    id serial PRIMARY KEY,
    cron_name varchar,
    active boolean
);
CREATE TABLE ir_attachment (
    id serial PRIMARY KEY,
    name varchar NOT NULL,
    res_model varchar,
    res_id integer,
    type varchar NOT NULL DEFAULT 'binary',
    public boolean,
    store_fname varchar,
    db_datas bytea,
    file_size integer,
    checksum varchar(40),
    mimetype varchar
);
CREATE INDEX ir_attachment_res_idx ON ir_attachment (res_model, res_id);

INSERT INTO res_users (id, login, password, active, share) VALUES
    (1, '__system__', NULL, false, false),
    (2, 'admin', NULL, true, false),
    (3, 'public', NULL, false, true);
SELECT setval('res_users_id_seq', 3);
INSERT INTO ir_cron (cron_name, active) VALUES ('Base: Auto-vacuum internal data', true),
    ('Base: Portal Users Deletion', true);
INSERT INTO ir_model_data (module, name, model, res_id) VALUES
    ('base', 'user_root', 'res.users', 1), ('base', 'user_admin', 'res.users', 2),
    ('base', 'public_user', 'res.users', 3), ('base', 'autovacuum_job', 'ir.cron', 1);
