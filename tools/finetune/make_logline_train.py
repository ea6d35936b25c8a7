#!/usr/bin/env python3
"""Writes samples/train/log-line.train.jsonl: invented log lines with their expected JSON for the
built-in `log-line` toJson adapter (src/core/adapters/builtin/log-line.taskling.json).

Deterministic (fixed seed): running it again writes the same file. Every value is invented
(documentation IP ranges 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 and 10.x, example.* domains,
role accounts and made-up ids): no real personal data.

Conventions (those of the adapter's instruction and the dev/test records in samples/eval/):
- timestamp: exactly as written (syslog "Feb  3 08:16:44" keeps its two spaces, klog keeps "0211 ...",
  access logs "11/Feb/2026:08:21:45 +0000"); null when the line has none.
- level: TRACE/DEBUG/INFO/WARN/ERROR/FATAL; WARNING/warn/W/WRN -> WARN, CRITICAL/crit/FATAL/FTL/F/panic
  -> FATAL, E/ERR -> ERROR, VRB -> TRACE; null when absent (plain syslog lines, access logs).
- source: the logger, service, module, caller or process name (syslog program, klog file.go:line,
  Java logger, Python logger, Android tag); null when absent.
- message: the text without timestamp, level and source; trailing key=value pairs are taken out.
- fields: [{key, value}] with string values, in order of appearance: syslog host then pid, klog pid,
  Java thread, then identifiers named in the message (user, ip, order, invoice, ...) and key=value
  pairs (quotes removed). Durations written in prose ("finished in 2.31s") are not fields.

Checks before writing: every output validates against the adapter's schema (jsonschema when
installed, else an equivalent hand check), no two training texts are the same after replacing
digits, and no training text equals or nearly equals (same after replacing digits, or difflib ratio
>= 0.85 after that) any text of samples/eval/log-line.dev.jsonl / .test.jsonl.

Usage: python3 tools/finetune/make_logline_train.py [--out FILE] [--seed N] [--check-only]
"""
import argparse
import datetime as dt
import difflib
import json
import os
import random
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
ADAPTER = os.path.join(ROOT, 'src', 'core', 'adapters', 'builtin', 'log-line.taskling.json')
EVAL = [os.path.join(ROOT, 'samples', 'eval', f'log-line.{s}.jsonl') for s in ('dev', 'test')]
OUT_DEFAULT = os.path.join(ROOT, 'samples', 'train', 'log-line.train.jsonl')

MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun']
LEVEL_OF = {'T': 'TRACE', 'D': 'DEBUG', 'I': 'INFO', 'W': 'WARN', 'E': 'ERROR', 'F': 'FATAL'}

# ---------------------------------------------------------------- value generators


def hexs(r, n):
    return ''.join(r.choice('0123456789abcdef') for _ in range(n))


def digits(r, n):
    return str(r.randint(10 ** (n - 1), 10 ** n - 1))


def doc_ip(r):
    return r.choice(['192.0.2', '198.51.100', '203.0.113']) + '.' + str(r.randint(2, 254))


def priv_ip(r):
    return f'10.{r.randint(0, 9)}.{r.randint(0, 30)}.{r.randint(2, 250)}'


def pick(*xs):
    return lambda r: r.choice(xs)


GEN = {
    'uid': lambda r: r.choice(['u-', 'usr_', 'U']) + digits(r, 5),
    'login': pick('deploy', 'backup', 'ci-runner', 'svc-report', 'admin', 'ops', 'git', 'www-data', 'build', 'monitor', 'ansible', 'oracle'),
    'ip': doc_ip,
    'ip10': priv_ip,
    'port': lambda r: str(r.randint(1025, 65000)),
    'order_no': lambda r: r.choice(['O-', 'ORD-', 'SO', '']) + digits(r, 6),
    'order_id': lambda r: r.choice(['ord_', 'O-', 'B-']) + digits(r, 5),
    'customer': lambda r: r.choice(['C-', 'cus_', 'CU']) + digits(r, 6),
    'invoice_no': lambda r: f'INV-{r.randint(2024, 2027)}-{digits(r, 5)}',
    'invoice_id': lambda r: 'in_' + hexs(r, 10),
    'email': lambda r: r.choice(['billing', 'noreply', 'alerts', 'support', 'finance', 'oncall', 'reports']) + '@' + r.choice(['example.com', 'example.org', 'example.net']),
    'shipment': lambda r: r.choice(['SH', 'TRK', 'PKG-']) + digits(r, 8),
    'count': lambda r: str(r.choice([r.randint(2, 60), r.randint(100, 9000)])),
    'small': lambda r: str(r.randint(2, 9)),
    'jobname': pick('nightly-rollup', 'purge-sessions', 'sync-catalog', 'rotate-keys', 'reindex-docs', 'send-digest', 'compact-ledger', 'refresh-rates'),
    'filename': lambda r: r.choice(['report', 'export', 'avatar', 'invoice', 'dump', 'manifest']) + '-' + digits(r, 4) + r.choice(['.csv', '.png', '.pdf', '.json', '.tar.gz']),
    'bucket': pick('media-archive', 'tenant-exports', 'backups-eu', 'static-assets', 'ml-artifacts', 'audit-trail'),
    'cfgpath': pick('/etc/app/config.yaml', '/opt/svc/settings.toml', 'config/prod.json', '/etc/relay/routes.ini', 'conf/limits.yml'),
    'dbhost': lambda r: r.choice(['db', 'pg', 'mysql', 'replica', 'redis']) + '-' + digits(r, 2),
    'dbport': pick('5432', '3306', '6379', '27017', '9042'),
    'broker': lambda r: r.choice(['kafka', 'amqp', 'nats']) + '-' + str(r.randint(1, 5)) + '.internal:' + r.choice(['9092', '5672', '4222']),
    'template': pick('welcome_v2', 'receipt_compact', 'password_reset', 'weekly_digest', 'trial_ending'),
    'table': pick('orders', 'line_items', 'audit_events', 'sessions', 'payouts', 'shipments', 'price_history'),
    'dir': pick('/var/tmp/uploads', '/srv/cache/thumbs', '/tmp/render', '/data/spool'),
    'urlpath': lambda r: r.choice(['/admin/users', '/internal/metrics', '/v2/exports', '/billing/plans', '/api/keys']) + r.choice(['', '/' + digits(r, 3)]),
    'role': pick('viewer', 'guest', 'support-agent', 'readonly', 'contractor'),
    'payment_id': lambda r: r.choice(['pay_', 'PMT-', 'pi_']) + hexs(r, 8),
    'pct': lambda r: str(r.randint(86, 99)) + '%',
    'mount': pick('/var', '/data', '/srv', '/home', '/var/lib/docker', '/mnt/backup'),
    'worker': lambda r: r.choice(['worker', 'consumer', 'fetcher']) + '-' + str(r.randint(1, 16)),
    'migration': lambda r: digits(r, 4) + '_' + r.choice(['add_refund_reason', 'drop_legacy_flags', 'create_webhooks', 'index_orders_created_at', 'split_address']),
    'tenant': lambda r: r.choice(['acme', 'globex', 'initech', 'umbrella', 'hooli', 'vandelay']) + '-' + str(r.randint(1, 40)),
    'msgid': lambda r: 'msg-' + hexs(r, 8),
    'url': lambda r: 'https://' + r.choice(['hooks.example.com', 'partner.example.net', 'crm.example.org']) + r.choice(['/notify', '/v1/events', '/callback']),
    'http_err': pick('400', '401', '403', '404', '409', '429', '500', '502', '503', '504'),
    'listen_port': pick('8080', '9090', '3000', '8000', '5000', '9443', '7070'),
    'signal': pick('SIGTERM', 'SIGINT', 'SIGQUIT'),
    'mem': lambda r: r.choice(['512 MB', '2 GB', '768 MB', '1.5 GB']),
    'domain': lambda r: r.choice(['api', 'shop', 'status', 'mail', 'cdn']) + '.' + r.choice(['example.com', 'example.org', 'example.net']),
    'cachekey': lambda r: r.choice(['product', 'cart', 'rates', 'profile', 'menu']) + ':' + digits(r, 5) + r.choice(['', ':v2', ':summary']),
    'func': pick('compute_totals', 'apply_discount', 'load_tenant', 'validate_token', 'render_row'),
    'svc_host': lambda r: r.choice(['inventory', 'ledger', 'search', 'pricing']) + '.svc.cluster.local',
    'indexname': pick('orders-2026', 'articles', 'customers_v3', 'logs-archive', 'catalog'),
    'client_id': lambda r: r.choice(['partner-', 'app-', 'cli-']) + str(r.randint(2, 99)),
    'backup_id': lambda r: 'bk-' + digits(r, 8),
    'release': lambda r: f'v{r.randint(1, 9)}.{r.randint(0, 30)}.{r.randint(0, 12)}',
    'handler': pick('OrderWebhookHandler', 'export_csv', 'ProfileController#update', 'handle_refund', 'UploadHandler'),
    'sku': lambda r: r.choice(['TS', 'MUG', 'BK', 'LMP', 'CHR']) + '-' + digits(r, 3) + '-' + r.choice(['RED', 'BLU', 'L', 'XL', 'OAK']),
    'session': lambda r: 'sess_' + hexs(r, 6),
    'unit': pick('nginx.service', 'docker.service', 'postgresql@16-main.service', 'app-worker.service', 'fstrim.timer', 'certbot.service'),
    'blockdev': pick('/dev/sdb1', '/dev/nvme0n1p2', '/dev/vdb', '/dev/sdc'),
    'iface': pick('eth0', 'eth1', 'ens3', 'enp0s31f6', 'bond0', 'wg0'),
    'procname': pick('java', 'node', 'python3', 'chrome', 'postgres', 'ffmpeg'),
    'pid': lambda r: str(r.randint(300, 48000)),
    'node': lambda r: r.choice(['node', 'worker', 'k8s-pool-a']) + '-' + str(r.randint(1, 12)),
    'podref': lambda r: r.choice(['default', 'shop', 'monitoring', 'batch']) + '/' + r.choice(['web', 'api', 'cron-sync', 'grafana', 'queue-worker']) + '-' + hexs(r, 5),
    'image': lambda r: r.choice(['registry.example.com/shop/api', 'registry.example.com/batch/etl', 'ghcr.io/example/agent']) + ':' + r.choice(['1.4.2', '2026.03', 'v0.9.1', 'latest']),
    'controller': pick('endpointslice', 'replicaset', 'garbagecollector', 'cronjob', 'persistentvolume-binder'),
    'volume': lambda r: 'pvc-' + hexs(r, 8),
    'addr': pick('[::]:10250', '127.0.0.1:10257', '0.0.0.0:8443', '127.0.0.1:10259'),
    'constraint': pick('users_email_key', 'orders_pkey', 'uniq_sku_per_store', 'payments_ref_key'),
    'dbname': pick('shop', 'ledger', 'analytics', 'crm'),
    'dbuser': pick('app', 'report_ro', 'etl', 'migrator'),
    'package': pick('inflight@1.0.6', 'glob@7.2.3', 'rimraf@3.0.2', 'uuid@3.4.0', 'querystring@0.2.0'),
    'srcfile': pick('src/main.rs', 'lib/parser.js', 'app/models/order.rb', 'pkg/cache/lru.go', 'src/index.ts'),
    'frames': lambda r: str(r.randint(31, 120)),
    'activity': pick('com.example.notes/.MainActivity', 'com.example.tracker/.ui.MapActivity', 'com.example.wallet/.LoginActivity'),
    'thread_name': pick('main', 'scheduling-1', 'kafka-consumer-2', 'http-nio-8443-exec-3', 'ForkJoinPool.commonPool-worker-5', 'pool-2-thread-1', 'reactor-http-epoll-4', 'Timer-0'),
    'pool': pick('HikariPool-1', 'HikariPool-2', 'ReadPool'),
}

# ---------------------------------------------------------------- messages
# A template fills {key|gen} with GEN[gen] and makes it a field {key: value}; {_gen} fills without
# making a field. Order of fields = order of appearance.

INLINE = [
    ('Invoice {invoice|invoice_no} sent to {recipient|email}', 'I'),
    ('User {user|uid} changed notification settings', 'ID'),
    ('Shipment {shipment|shipment} marked as delivered', 'I'),
    ('Could not connect to {db_host|dbhost}:{port|dbport}, retrying', 'WE'),
    ('Loaded {products|count} products into cache', 'ID'),
    ('Scheduled job {job|jobname} skipped: previous run still active', 'W'),
    ('Uploaded {file|filename} to bucket {bucket|bucket}', 'ID'),
    ('Failed to parse config file {file|cfgpath}: unexpected token at line {line|small}', 'EF'),
    ('Reconnected to broker {broker|broker}', 'IW'),
    ('Template {template|template} not found, using default', 'W'),
    ('Deleted {files|count} expired temp files from {dir|dir}', 'ID'),
    ('Denied access to {path|urlpath} for role {role|role}', 'W'),
    ('Payment {payment|payment_id} captured for customer {customer|customer}', 'I'),
    ('Thread pool saturated, {queued|count} tasks queued', 'W'),
    ('Unhandled exception in handler {handler|handler}', 'EF'),
    ('Disk usage on {mount|mount} at {usage|pct}', 'WE'),
    ('Starting worker {worker|worker} with concurrency {concurrency|small}', 'I'),
    ('Schema migration {migration|migration} applied', 'I'),
    ('Invalid API key for tenant {tenant|tenant}', 'WE'),
    ('Retrying message {message_id|msgid} (attempt {attempt|small} of 10)', 'W'),
    ('Webhook to {url|url} returned {status|http_err}', 'WE'),
    ('Listening on port {port|listen_port}', 'I'),
    ('Shutting down after receiving {signal|signal}', 'IW'),
    ('Cannot allocate {memory|mem} for buffer pool', 'EF'),
    ('Certificate for {domain|domain} expires in {days|small} days', 'W'),
    ('Cache miss for key {key|cachekey}', 'DT'),
    ('Entering {function|func}', 'T'),
    ('Resolved {hostname|svc_host} to {ip|ip10}', 'DT'),
    ('Order {order|order_no} cancelled by customer {customer|customer}', 'I'),
    ('Reindex of {index|indexname} finished', 'I'),
    ('Rate limit reached for client {client|client_id}', 'W'),
    ('Connection to replica {replica|dbhost} lost', 'EF'),
    ('Backup {backup|backup_id} uploaded to {bucket|bucket}', 'I'),
    ('Job {job|jobname} exceeded its deadline', 'E'),
    ('Deployed release {release|release} to staging', 'I'),
    ('Stock for {sku|sku} dropped below threshold', 'W'),
    ('Session {session|session} refreshed for user {user|uid}', 'DT'),
    ('Received SIGHUP, reloading configuration', 'I'),
    ('Database pool ready', 'ID'),
    ('Garbage collection took longer than expected', 'W'),
    ('Request body too large, rejecting', 'W'),
    ('Fatal error in main loop, exiting', 'F'),
    ('Nothing to do, queue is empty', 'DT'),
    ('Verbindung zur Datenbank verloren, neuer Versuch', 'WE'),
    ('Échec de l\'envoi du rapport {report|filename}', 'E'),
    ('Warm-up finished ✅', 'I'),
]

# prose message + the keys of the key=value pairs that follow it
KV_MSGS = [
    ('Order placed', ['order_id', 'amount', 'currency'], 'I'),
    ('Refund issued', ['order_id', 'amount', 'reason'], 'I'),
    ('Webhook delivery failed', ['endpoint', 'status', 'attempt'], 'WE'),
    ('Retrying upstream call', ['upstream', 'attempt', 'backoff_ms'], 'W'),
    ('Token refreshed', ['client_id', 'expires_in'], 'DI'),
    ('Report generated', ['report', 'rows', 'duration_ms'], 'I'),
    ('Queue drained', ['queue', 'processed'], 'I'),
    ('Connection pool exhausted', ['pool', 'active', 'max'], 'EF'),
    ('Thumbnail created', ['image_id', 'width', 'height'], 'DT'),
    ('Password reset requested', ['user_id', 'channel'], 'I'),
    ('Stock reserved', ['sku', 'qty', 'warehouse'], 'ID'),
    ('Price recalculated', ['sku', 'old_price', 'new_price'], 'D'),
    ('Configuration reloaded', ['version', 'changed_keys'], 'I'),
    ('Slow query detected', ['table', 'duration_ms', 'rows'], 'W'),
    ('Message published', ['topic', 'partition', 'offset'], 'DT'),
    ('Upload finished', ['bucket', 'object', 'size_kb'], 'I'),
    ('Health check degraded', ['dependency', 'latency_ms'], 'W'),
    ('Quota exceeded', ['tenant', 'limit', 'used'], 'WE'),
    ('Email queued', ['template', 'recipient'], 'DI'),
    ('Signature verification failed', ['key_id', 'alg'], 'E'),
    ('Batch job finished', ['job', 'processed', 'failed', 'duration_ms'], 'I'),
    ('Lock wait timeout', ['lock', 'wait_ms'], 'WE'),
    ('Request rejected', ['method', 'path', 'status', 'request_id'], 'W'),
    ('Request handled', ['method', 'path', 'status', 'duration_ms', 'request_id'], 'ID'),
    ('Cache evicted', ['cache', 'entries', 'reason'], 'D'),
    ('Feature toggled', ['feature', 'enabled', 'tenant'], 'I'),
    ('Circuit breaker opened', ['upstream', 'failures', 'window_s'], 'E'),
    ('Subscription renewed', ['subscription', 'plan', 'amount', 'currency'], 'I'),
    ('Invoice overdue', ['invoice_id', 'days_overdue'], 'W'),
    ('Document indexed', ['doc_id', 'index', 'took_ms'], 'DT'),
    ('Worker heartbeat missed', ['worker', 'last_seen_s'], 'WE'),
    ('Transcoding failed', ['media_id', 'codec', 'error'], 'E'),
    ('Export completed', ['export_id', 'rows', 'format'], 'I'),
    ('Replica lag rising', ['replica', 'lag_s'], 'W'),
    ('Session created', ['session_id', 'user_id', 'ttl_s'], 'DI'),
    ('Payment declined', ['order_id', 'code', 'provider'], 'W'),
    ('Out of disk space, stopping writes', ['volume', 'free_mb'], 'F'),
    ('Unrecoverable state, aborting', ['subsystem', 'error'], 'F'),
]

KV_VAL = {
    'order_id': GEN['order_id'], 'amount': lambda r: f'{r.randint(3, 900)}.{r.randint(0, 99):02d}',
    'currency': pick('EUR', 'USD', 'GBP', 'CHF', 'SEK'), 'reason': pick('"duplicate charge"', 'customer_request', '"item damaged"', 'expired', '"size limit"', 'lru'),
    'endpoint': GEN['url'], 'status': GEN['http_err'], 'attempt': GEN['small'], 'upstream': pick('pricing', 'ledger-api', 'geo-lookup', 'crm'),
    'backoff_ms': pick('200', '400', '800', '1600', '3200'), 'client_id': GEN['client_id'], 'expires_in': pick('3600', '900', '86400'),
    'report': pick('monthly-sales', 'churn-q3', 'inventory-aging', 'vat-summary'), 'rows': GEN['count'], 'duration_ms': lambda r: str(r.randint(5, 9000)),
    'queue': pick('emails', 'thumbnails', 'webhooks', 'payouts'), 'processed': GEN['count'], 'pool': pick('primary', 'reporting', 'cache'),
    'active': pick('20', '32', '50', '64'), 'max': pick('20', '32', '50', '64'), 'image_id': lambda r: 'img_' + hexs(r, 6),
    'width': pick('320', '640', '1280'), 'height': pick('240', '480', '720'), 'user_id': GEN['uid'], 'channel': pick('email', 'sms', 'push'),
    'sku': GEN['sku'], 'qty': GEN['small'], 'warehouse': pick('FRA-1', 'AMS-2', 'DUB-3', 'WAW-1'),
    'old_price': lambda r: f'{r.randint(5, 90)}.99', 'new_price': lambda r: f'{r.randint(5, 90)}.49', 'version': lambda r: str(r.randint(10, 400)),
    'changed_keys': GEN['small'], 'table': GEN['table'], 'topic': pick('orders.created', 'user-events', 'audit', 'inventory.updates'),
    'partition': GEN['small'], 'offset': lambda r: digits(r, 7), 'bucket': GEN['bucket'], 'object': GEN['filename'],
    'size_kb': lambda r: str(r.randint(12, 90000)), 'dependency': pick('redis', 'postgres', 's3', 'smtp'), 'latency_ms': lambda r: str(r.randint(300, 6000)),
    'tenant': GEN['tenant'], 'limit': pick('1000', '5000', '50/min', '10GB'), 'used': lambda r: str(r.randint(1001, 9999)),
    'template': GEN['template'], 'recipient': GEN['email'], 'key_id': lambda r: 'k' + digits(r, 3), 'alg': pick('RS256', 'ES256', 'HS512'),
    'job': GEN['jobname'], 'failed': lambda r: str(r.randint(0, 12)), 'lock': pick('ledger:close', 'cron:rollup', 'tenant:42:billing'),
    'wait_ms': pick('5000', '10000', '30000'), 'method': pick('GET', 'POST', 'PUT', 'DELETE', 'PATCH'), 'path': GEN['urlpath'],
    'request_id': lambda r: r.choice(['req-', 'rq_', '']) + hexs(r, 8), 'cache': pick('sessions', 'catalog', 'rates'), 'entries': GEN['count'],
    'feature': pick('dark_mode', 'bulk_export', 'instant_payouts', 'new_search'), 'enabled': pick('true', 'false'),
    'failures': pick('5', '10', '20'), 'window_s': pick('30', '60'), 'subscription': lambda r: 'sub_' + hexs(r, 6),
    'plan': pick('pro', 'team', 'starter', 'enterprise'), 'invoice_id': GEN['invoice_id'], 'days_overdue': lambda r: str(r.randint(1, 60)),
    'doc_id': lambda r: digits(r, 6), 'index': GEN['indexname'], 'took_ms': lambda r: str(r.randint(1, 400)),
    'worker': GEN['worker'], 'last_seen_s': lambda r: str(r.randint(30, 600)), 'media_id': lambda r: 'm-' + digits(r, 6),
    'codec': pick('h264', 'vp9', 'av1', 'aac'), 'error': pick('"unsupported pixel format"', '"input truncated"', 'EOF', '"checksum mismatch"', '"invalid state transition"'),
    'export_id': lambda r: 'exp-' + digits(r, 5), 'format': pick('csv', 'xlsx', 'parquet', 'json'), 'replica': GEN['dbhost'],
    'lag_s': lambda r: str(r.randint(5, 300)), 'session_id': GEN['session'], 'ttl_s': pick('1800', '3600', '43200'),
    'code': pick('card_declined', 'insufficient_funds', 'do_not_honor', '05'), 'provider': pick('paybridge', 'cardlane', 'moneta'),
    'volume': pick('/data', '/var/lib/queue', 'vol-ssd-2'), 'free_mb': pick('0', '12', '48'), 'subsystem': pick('raft', 'wal-writer', 'scheduler-core'),
}

SERVICES = ['order-service', 'inventory', 'billing-api', 'notification-hub', 'user-profile', 'report-builder', 'media-transcoder',
            'search-indexer', 'ledger', 'shipping', 'catalog', 'webhook-relay', 'audit-log', 'pricing-engine', 'recommender',
            'mail-sender', 'storage-gw', 'token-service', 'quota-manager', 'event-bus', 'image-resizer', 'payout-worker']
JAVA_LOGGERS = ['c.e.billing.InvoiceService', 'com.example.inventory.StockReservationJob', 'org.apache.kafka.clients.NetworkClient',
                'o.s.web.servlet.DispatcherServlet', 'com.zaxxer.hikari.pool.HikariPool', 'org.eclipse.jetty.server.Server',
                'c.e.notify.MailDispatcher', 'com.example.shipping.LabelPrinter', 'o.a.c.c.C.[Tomcat].[localhost]', 'c.e.search.Reindexer']
PY_LOGGERS = ['app.api', 'billing.tasks', 'ingest.pipeline', 'root', 'uvicorn.error', 'django.request', 'scraper.fetch', 'etl.load',
              'notifications', 'auth.tokens', 'sqlalchemy.pool']


def fill(r, tmpl, extra=None):
    """(text, fields) for a template: {key|gen} -> field key with value GEN[gen] (or extra[gen]),
    {gen} -> a plain value (no field). Generator names may start with "_" (helpers)."""
    fields = []
    gens = dict(GEN, **(extra or {}))

    def sub(m):
        spec = m.group(1)
        if '|' not in spec:
            return gens[spec](r)
        key, gen = spec.split('|')
        v = gens[gen](r)
        fields.append((key, v))
        return v
    return re.sub(r'\{([^{}]+)\}', sub, tmpl), fields


def inline_msg(r, levels=None):
    """(message, fields, level letter) from INLINE, optionally restricted to messages allowing one of `levels`."""
    cands = [t for t in INLINE if levels is None or set(t[1]) & set(levels)]
    tmpl, lv = r.choice(cands)
    text, fields = fill(r, tmpl)
    return text, fields, r.choice(lv if levels is None else [c for c in lv if c in levels])


def kv_msg(r, nmax=5):
    """(message, [(key, raw value as written)], level letter) from KV_MSGS."""
    prose, keys, lv = r.choice(KV_MSGS)
    keys = keys[:nmax]
    if len(keys) > 2 and r.random() < 0.3:
        keys = keys[:-1]
    return prose, [(k, KV_VAL[k](r)) for k in keys], r.choice(lv)


def unq(v):
    return v[1:-1] if len(v) >= 2 and v[0] == '"' and v[-1] == '"' else v


def kv_text(pairs, sep=' '):
    return sep.join(f'{k}={v}' for k, v in pairs)


def kv_fields(pairs):
    return [(k, unq(v)) for k, v in pairs]


def rec(ts, level, source, message, fields):
    return {'timestamp': ts, 'level': level, 'source': source, 'message': message,
            'fields': [{'key': k, 'value': str(v)} for k, v in fields]}

# ---------------------------------------------------------------- timestamps


def rand_dt(r):
    return dt.datetime(r.randint(2024, 2027), r.randint(1, 12), r.randint(1, 28), r.randint(0, 23), r.randint(0, 59), r.randint(0, 59), r.randint(0, 999999))


def iso(r, d, frac=None, tz=None):
    frac = frac if frac is not None else r.choice(['ms', 'ms', 'none', 'us'])
    tz = tz if tz is not None else r.choice(['Z', 'Z', 'Z', '+01:00', '+02:00', '-05:00', '+00:00'])
    s = d.strftime('%Y-%m-%dT%H:%M:%S')
    if frac == 'ms':
        s += f'.{d.microsecond // 1000:03d}'
    elif frac == 'us':
        s += f'.{d.microsecond:06d}'
    return s + tz


def spaced(d, sep='.', frac='ms'):
    s = d.strftime('%Y-%m-%d %H:%M:%S')
    if frac == 'ms':
        s += f'{sep}{d.microsecond // 1000:03d}'
    return s


def syslog_ts(d):
    return f'{MONTHS[d.month - 1]} {d.day:>2} {d:%H:%M:%S}'


def level_word(r, letter, style='upper'):
    """The written level for a canonical letter, and the canonical value."""
    canon = LEVEL_OF[letter]
    variants = {'W': ['WARN', 'WARN', 'WARNING'], 'F': ['FATAL', 'CRITICAL'], 'E': ['ERROR'], 'I': ['INFO'], 'D': ['DEBUG'], 'T': ['TRACE']}
    w = r.choice(variants[letter])
    if style == 'lower':
        w = w.lower()
    return w, canon

# ---------------------------------------------------------------- formats


def f_iso_bracket(r):
    d = rand_dt(r)
    ts = iso(r, d)
    svc = r.choice(SERVICES)
    if r.random() < 0.75:
        msg, pairs, lv = kv_msg(r)
        text_msg, fields = msg + ' ' + kv_text(pairs), kv_fields(pairs)
    else:
        msg, fields, lv = inline_msg(r)
        text_msg = msg
    w, canon = level_word(r, lv)
    style = r.choice(['plain', 'plain', 'plain', 'allbr', 'pad'])
    if style == 'allbr':
        text = f'[{ts}] [{w}] [{svc}] {text_msg}'
    elif style == 'pad':
        text = f'{ts} {w:<5} [{svc}] {text_msg}'
    else:
        text = f'{ts} {w} [{svc}] {text_msg}'
    return text, rec(ts, canon, svc, msg, fields)


def f_iso_nosource(r):
    d = rand_dt(r)
    ts = r.choice([iso(r, d), spaced(d, frac=r.choice(['ms', 'none']))])
    msg, fields, lv = inline_msg(r)
    w, canon = level_word(r, lv)
    return f'{ts} {w:<5} {msg}', rec(ts, canon, None, msg, fields)


def f_level_first(r):
    d = rand_dt(r)
    ts = spaced(d, frac='none')
    src = r.choice(['cert-watch', 'queue-monitor', 'db-health', 'sync-agent', 'license-check', 'fs-watcher'])
    msg, fields, lv = inline_msg(r)
    w, canon = level_word(r, lv)
    return f'{w} {ts} {src}: {msg}', rec(ts, canon, src, msg, fields)


def f_bracket_level(r):
    d = rand_dt(r)
    msg, fields, lv = inline_msg(r, 'DIWE')
    w, canon = level_word(r, lv)
    if r.random() < 0.5:
        ts = f'{d:%H:%M:%S}'
        return f'[{w}] {ts} {msg}', rec(ts, canon, None, msg, fields)
    return f'[{w}] {msg}', rec(None, canon, None, msg, fields)


def f_maven(r):
    msgs = [
        ('Using platform encoding (UTF-8 actually) to copy filtered resources, i.e. build is platform dependent!', [], 'W'),
        ('BUILD FAILURE', [], 'E'),
        ('Tests run: {tests|count}, Failures: {failures|small}, Errors: 0, Skipped: {skipped|small}', None, 'E'),
        ('Compiling {files|count} source files to target/classes', None, 'I'),
        ('Failed to execute goal on project {project|_proj}: Could not resolve dependencies', None, 'E'),
    ]
    m, _, lv = r.choice(msgs)
    if '{project|_proj}' in m:
        proj = r.choice(['shop-core', 'billing-web', 'etl-jobs'])
        m = m.replace('{project|_proj}', proj)
        msg, fields = m, [('project', proj)]
    else:
        msg, fields = fill(r, m)
    w, canon = level_word(r, lv)
    return f'[{w}] {msg}', rec(None, canon, None, msg, fields)


SYSLOG = [
    ('sshd', True, 'Failed password for invalid user {user|login} from {ip|ip} port {port|port} ssh2'),
    ('sshd', True, 'Connection closed by {ip|ip} port {port|port} [preauth]'),
    ('sshd', True, 'Disconnected from user {user|login} {ip|ip} port {port|port}'),
    ('systemd', True, 'Starting Cleanup of Temporary Directories...'),
    ('systemd', True, 'Stopped target Graphical Interface.'),
    ('systemd', True, 'Reloading.'),
    ('kernel', False, 'Out of memory: Killed process {killed_pid|pid} ({process|procname})'),
    ('kernel', False, 'EXT4-fs error (device {device|blockdev}): ext4_find_entry: reading directory lblock 0'),
    ('kernel', False, '{interface|iface}: Link is Down'),
    ('dhclient', True, 'DHCPACK of {ip|ip10} from {server|ip10}'),
    ('chronyd', True, 'Selected source {server|ip}'),
    ('chronyd', True, 'System clock wrong by 1.4 seconds, adjustment started'),
    ('postfix/smtpd', True, 'connect from unknown[{ip|ip}]'),
    ('dockerd', True, 'Container {container|_hex12} health status changed to unhealthy'),
    ('anacron', True, 'Job `cron.daily\' terminated'),
    ('rsyslogd', True, 'rsyslogd was HUPed'),
    ('named', True, 'zone {zone|domain}/IN: loaded serial {serial|_serial}'),
    ('ntfs-3g', True, 'Version 2022.10.3 integrated FUSE 29'),
    ('sudo', False, 'pam_unix(sudo:auth): authentication failure; logname={logname|login} uid=1000'),
    ('containerd', True, 'shim disconnected id={id|_hex12}'),
    ('nginx', True, 'signal process started'),
    ('backup-agent', True, 'uploaded archive {archive|filename} to {bucket|bucket}'),
]
GEN['_hex12'] = lambda r: hexs(r, 12)
GEN['_serial'] = lambda r: digits(r, 10)


def fill_syslog(r, tmpl):
    """(text as written, message, fields): trailing key=value pairs are taken out of the message."""
    text, fields = fill(r, tmpl)
    m = re.search(r'[;,]?((?:\s+[A-Za-z_]+=\S+)+)$', text)
    if not m:
        return text, text, fields
    pairs = re.findall(r'([A-Za-z_]+)=(\S+)', m.group(1))
    keys = {k for k, _ in pairs}
    return text, text[:m.start()], [f for f in fields if f[0] not in keys] + pairs


def f_syslog(r):
    d = rand_dt(r)
    ts = syslog_ts(d)
    host = r.choice(['web', 'app', 'db', 'edge', 'mx', 'nas', 'build', 'vpn', 'log', 'k8s']) + '-' + f'{r.randint(1, 19):02d}'
    proc, has_pid, tmpl = r.choice(SYSLOG)
    line, msg, fields = fill_syslog(r, tmpl)
    if has_pid:
        pid = '1' if proc == 'systemd' else str(r.randint(300, 40000))
        text = f'{ts} {host} {proc}[{pid}]: {line}'
        f = [('host', host), ('pid', pid)]
    else:
        text = f'{ts} {host} {proc}: {line}'
        f = [('host', host)]
    return text, rec(ts, None, proc, msg, f + fields)


def f_syslog_iso(r):
    d = rand_dt(r)
    ts = iso(r, d, frac='us', tz=r.choice(['+00:00', '+01:00', 'Z']))
    host = r.choice(['gw', 'db', 'api', 'cache']) + '-' + r.choice(['a', 'b', 'c']) + str(r.randint(1, 4))
    proc, has_pid, tmpl = r.choice([s for s in SYSLOG if s[1]])
    line, msg, fields = fill_syslog(r, tmpl)
    pid = str(r.randint(300, 40000))
    return f'{ts} {host} {proc}[{pid}]: {line}', rec(ts, None, proc, msg, [('host', host), ('pid', pid)] + fields)


KLOG = [
    ('scheduler.go', 'Successfully assigned {pod|podref} to {node|node}', 'I'),
    ('kuberuntime_manager.go', 'Pulling image "{image|image}"', 'I'),
    ('kubelet_node_status.go', 'Node {node|node} status is now: NodeNotReady', 'WI'),
    ('leaderelection.go', 'failed to renew lease kube-system/kube-controller-manager: timed out waiting for the condition', 'EF'),
    ('eviction_manager.go', 'Evicting pod {pod|podref} due to memory pressure', 'W'),
    ('shared_informer.go', 'Waiting for caches to sync for {controller|controller}', 'I'),
    ('controllermanager.go', 'Starting {controller|controller} controller', 'I'),
    ('secure_serving.go', 'Serving securely on {address|addr}', 'I'),
    ('attacher.go', 'Attach operation for volume {volume|volume} timed out', 'E'),
    ('main.go', 'invalid configuration: no server found for cluster', 'F'),
    ('round_trippers.go', 'GET https://10.96.0.1:443/api?timeout=32s 200 OK in 4 milliseconds', 'D'),
    ('pod_workers.go', 'Error syncing pod {pod|podref}, skipping: CrashLoopBackOff', 'E'),
]


def f_klog(r):
    d = rand_dt(r)
    file, tmpl, lvs = r.choice(KLOG)
    lv = r.choice(lvs)
    letter = {'I': 'I', 'W': 'W', 'E': 'E', 'F': 'F', 'D': 'I'}[lv]
    canon = LEVEL_OF[letter]
    msg, fields = fill(r, tmpl)
    pid = r.choice(['1', str(r.randint(8, 99999))])
    src = f'{file}:{r.randint(20, 900)}'
    ts = f'{d:%m%d %H:%M:%S}.{d.microsecond:06d}'
    return f'{letter}{ts} {pid:>7} {src}] {msg}', rec(ts, canon, src, msg, [('pid', pid)] + fields)


def f_python(r):
    d = rand_dt(r)
    msg, fields, lv = inline_msg(r)
    w, canon = level_word(r, lv)
    logger = r.choice(PY_LOGGERS)
    style = r.choice(['dash', 'colon', 'basic', 'flask', 'bracket'])
    ts = spaced(d, sep=',')
    if style == 'dash':
        return f'{ts} - {logger} - {w} - {msg}', rec(ts, canon, logger, msg, fields)
    if style == 'colon':
        return f'{ts} {w} {logger}: {msg}', rec(ts, canon, logger, msg, fields)
    if style == 'basic':
        return f'{w}:{logger}:{msg}', rec(None, canon, logger, msg, fields)
    if style == 'flask':
        mod = r.choice(['app', 'views', 'api'])
        return f'[{ts}] {w} in {mod}: {msg}', rec(ts, canon, mod, msg, fields)
    return f'{ts} {w} [{logger}] {msg}', rec(ts, canon, logger, msg, fields)


def f_celery(r):
    d = rand_dt(r)
    ts = spaced(d, sep=',')
    task = r.choice(['reports.build_pdf', 'mail.send_batch', 'billing.charge_due', 'media.make_preview', 'sync.pull_orders'])
    tid = f'{hexs(r, 8)}-{hexs(r, 4)}-{hexs(r, 4)}'
    proc = r.choice(['MainProcess', 'ForkPoolWorker-1', 'ForkPoolWorker-3'])
    if r.random() < 0.6:
        msg_full = f'Task {task}[{tid}] succeeded in {r.randint(0, 30)}.{r.randint(10, 99)}s: None'
        lv = 'INFO'
    else:
        msg_full = f'Task {task}[{tid}] raised unexpected: ConnectionError(\'broker unreachable\')'
        lv = 'ERROR'
    msg = msg_full.replace(f'[{tid}]', '')
    return f'[{ts}: {lv}/{proc}] {msg_full}', rec(ts, lv, proc, msg, [('task', task), ('task_id', tid)])


def f_django_dev(r):
    d = rand_dt(r)
    ts = f'{d.day:02d}/{MONTHS[d.month - 1]}/{d.year} {d:%H:%M:%S}'
    method = r.choice(['GET', 'POST'])
    path = r.choice(['/admin/', '/accounts/login/', '/static/css/site.css', '/api/v1/items/?page=2', '/healthz'])
    status = r.choice(['200', '302', '304', '404', '500'])
    size = '0' if status in ('302', '304') else str(r.randint(120, 40000))
    req = f'{method} {path} HTTP/1.1'
    return f'[{ts}] "{req}" {status} {size}', rec(ts, None, None, req, [('status', status), ('bytes', size)])


def f_java(r):
    d = rand_dt(r)
    logger = r.choice(JAVA_LOGGERS)
    thread = GEN['thread_name'](r)
    if logger.endswith('HikariPool') and r.random() < 0.7:
        pool = GEN['pool'](r)
        msg, fields, lv = f'{pool} - Connection is not available, request timed out after 30000ms.', [('pool', pool)], r.choice('WE')
    else:
        msg, fields, lv = inline_msg(r)
    w, canon = level_word(r, lv)
    if w == 'CRITICAL':
        w = 'FATAL'
    style = r.choice(['logback', 'logback2', 'spring', 'timeonly'])
    if style == 'logback':
        ts = spaced(d)
        text = f'{ts} [{thread}] {w:<5} {logger} - {msg}'
        f = [('thread', thread)]
    elif style == 'logback2':
        ts = spaced(d)
        text = f'{ts} {w:<5} [{thread}] {logger} - {msg}'
        f = [('thread', thread)]
    elif style == 'spring':
        ts = iso(r, d, frac='ms', tz=r.choice(['Z', '+01:00', '+02:00']))
        pid = str(r.randint(1000, 60000))
        text = f'{ts} {w:>5} {pid} --- [{thread[-15:]:>15}] {logger:<40} : {msg}'
        f = [('pid', pid), ('thread', thread[-15:])]
    else:
        ts = f'{d:%H:%M:%S}.{d.microsecond // 1000:03d}'
        text = f'{ts} [{thread}] {w} {logger} - {msg}'
        f = [('thread', thread)]
    return text, rec(ts, canon, logger, msg, f + fields)


UAS = ['Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0', 'curl/8.7.1', 'python-requests/2.32.3',
       'Go-http-client/2.0', 'kube-probe/1.30', 'Wget/1.24.5', 'PostmanRuntime/7.39.0',
       'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15']
PATHS = ['/', '/index.html', '/api/v2/products?page=3', '/login', '/assets/app.3f9c2.js', '/healthz', '/api/v1/cart/items',
         '/robots.txt', '/wp-login.php', '/metrics', '/images/banner.webp', '/api/v1/search?q=lamp']


def f_access(r):
    d = rand_dt(r)
    off = r.choice(['+0000', '+0100', '+0200', '-0400'])
    ts = f'{d.day:02d}/{MONTHS[d.month - 1]}/{d.year}:{d:%H:%M:%S} {off}'
    client = r.choice([doc_ip(r), priv_ip(r)])
    user = r.choice(['-', '-', '-', '-', GEN['login'](r)])
    method = r.choice(['GET', 'GET', 'GET', 'POST', 'HEAD', 'PUT', 'DELETE'])
    path = r.choice(PATHS)
    proto = r.choice(['HTTP/1.1', 'HTTP/1.1', 'HTTP/2.0', 'HTTP/1.0'])
    status = r.choice(['200', '200', '201', '204', '301', '304', '400', '401', '403', '404', '499', '500', '502', '503'])
    size = '0' if status in ('204', '304') else str(r.randint(0, 90000))
    req = f'{method} {path} {proto}'
    fields = [('client', client)]
    if user != '-':
        fields.append(('user', user))
    fields += [('status', status), ('bytes', size)]
    if r.random() < 0.3:  # common log format
        return f'{client} - {user} [{ts}] "{req}" {status} {size}', rec(ts, None, None, req, fields)
    ref = r.choice(['-', '-', 'https://shop.example.com/cart', 'https://www.example.org/'])
    ua = r.choice(UAS)
    if ref != '-':
        fields.append(('referer', ref))
    fields.append(('user_agent', ua))
    return f'{client} - {user} [{ts}] "{req}" {status} {size} "{ref}" "{ua}"', rec(ts, None, None, req, fields)


NGINX_ERR = [
    ('error', 'open() "/usr/share/nginx/html/{_file}" failed (2: No such file or directory)'),
    ('error', 'connect() failed (111: Connection refused) while connecting to upstream'),
    ('error', 'upstream timed out (110: Connection timed out) while reading response header from upstream'),
    ('warn', 'an upstream response is buffered to a temporary file /var/cache/nginx/proxy_temp/4/21/0000000214 while reading upstream'),
    ('crit', 'SSL_do_handshake() failed (SSL: error:0A00010B:SSL routines::wrong version number) while SSL handshaking'),
    ('error', 'client intended to send too large body: {_bigbytes} bytes'),
]
GEN['_file'] = pick('favicon.ico', 'apple-touch-icon.png', '.env', 'sitemap.xml')
GEN['_bigbytes'] = lambda r: str(r.randint(10485761, 90000000))


def f_nginx_error(r):
    d = rand_dt(r)
    ts = f'{d:%Y/%m/%d %H:%M:%S}'
    lvw, tmpl = r.choice(NGINX_ERR)
    canon = {'error': 'ERROR', 'warn': 'WARN', 'crit': 'FATAL'}[lvw]
    msg, _ = fill(r, tmpl)
    pid = str(r.randint(100, 9999))
    conn = str(r.randint(1, 999999))
    client = doc_ip(r)
    server = GEN['domain'](r)
    req = f'{r.choice(["GET", "POST"])} {r.choice(PATHS)} HTTP/1.1'
    tail = [('client', client), ('server', server), ('request', req)]
    if 'upstream' in msg and 'buffered' not in msg:
        tail.append(('upstream', f'http://{priv_ip(r)}:{r.choice(["8080", "3000", "9000"])}{req.split()[1]}'))
    tail.append(('host', server))
    written = ', '.join(f'{k}: {v}' if k in ('client', 'server') else f'{k}: "{v}"' for k, v in tail)
    text = f'{ts} [{lvw}] {pid}#{pid}: *{conn} {msg}, {written}'
    return text, rec(ts, canon, None, msg, [('pid', pid), ('connection', conn)] + tail)


APACHE_ERR = [
    ('core', 'error', 'AH00126: Invalid URI in request GET /..%2f..%2fetc HTTP/1.1'),
    ('proxy', 'error', 'AH00940: HTTP: disabled connection for (localhost)'),
    ('ssl', 'warn', 'AH01909: www.example.com:443:0 server certificate does NOT include an ID which matches the server name'),
    ('authz_core', 'error', 'AH01630: client denied by server configuration: /srv/www/private'),
    ('mpm_event', 'notice', None),
    ('php', 'error', 'PHP Fatal error:  Allowed memory size of 134217728 bytes exhausted'),
]


def f_apache_error(r):
    d = rand_dt(r)
    us = f'{d.microsecond:06d}'
    ts = f'{DAYS[d.weekday()]} {MONTHS[d.month - 1]} {d.day:02d} {d:%H:%M:%S}.{us} {d.year}'
    mod, lvw, msg = r.choice([a for a in APACHE_ERR if a[2]])
    canon = {'error': 'ERROR', 'warn': 'WARN'}[lvw]
    pid, tid = str(r.randint(1000, 30000)), str(r.randint(139000000000000, 140999999999999))
    client = f'{doc_ip(r)}:{r.randint(1025, 65000)}'
    fields = [('pid', pid), ('tid', tid)]
    head = f'[{ts}] [{mod}:{lvw}] [pid {pid}:tid {tid}]'
    if r.random() < 0.7:
        head += f' [client {client}]'
        fields.append(('client', client))
    return f'{head} {msg}', rec(ts, canon, mod, msg, fields)


def f_logfmt(r):
    d = rand_dt(r)
    msg, pairs, lv = kv_msg(r, 4)
    lw = {'T': 'debug', 'D': 'debug', 'I': 'info', 'W': r.choice(['warn', 'warning']), 'E': 'error', 'F': r.choice(['fatal', 'error'])}[lv]
    canon = {'debug': 'DEBUG', 'info': 'INFO', 'warn': 'WARN', 'warning': 'WARN', 'error': 'ERROR', 'fatal': 'FATAL'}[lw]
    pairs = [(k, v if not v.startswith('"') else v) for k, v in pairs]
    style = r.choice(['gokit', 'logrus', 'logrus', 'slog'])
    if style == 'gokit':
        ts = iso(r, d, frac='ms', tz='Z')
        src = f'{r.choice(["server", "handler", "store", "worker"])}.go:{r.randint(30, 400)}'
        text = f'level={lw} ts={ts} caller={src} msg="{msg}" ' + kv_text(pairs)
    elif style == 'logrus':
        ts = iso(r, d, frac=r.choice(['none', 'us']), tz=r.choice(['Z', '+01:00']))
        src = r.choice([None, None, 'libnetwork', 'cache', 'ingest'])
        text = f'time="{ts}" level={lw} msg="{msg}"' + (f' module={src}' if src else '') + ' ' + kv_text(pairs)
    else:
        ts = iso(r, d, frac='ms', tz=r.choice(['Z', '+02:00']))
        src = r.choice(SERVICES)
        lw = lw.upper()
        text = f'time={ts} level={lw} msg="{msg}" logger={src} ' + kv_text(pairs)
    return text, rec(ts, canon, src, msg, kv_fields(pairs))


def f_json(r):
    d = rand_dt(r)
    msg, pairs, lv = kv_msg(r, 4)
    canon = LEVEL_OF[lv]
    tkey = r.choice(['time', 'ts', 'timestamp', '@timestamp'])
    lkey = r.choice(['level', 'level', 'severity', 'lvl'])
    skey = r.choice(['logger', 'service', 'name', 'component', None])
    mkey = r.choice(['msg', 'message'])
    lw = canon.lower() if r.random() < 0.6 else canon
    if canon == 'WARN' and r.random() < 0.4:
        lw = r.choice(['warning', 'WARNING'])
    ts = iso(r, d)
    obj = {tkey: ts, lkey: lw}
    src = None
    order = [tkey, lkey]
    if skey:
        src = r.choice(SERVICES + PY_LOGGERS)
        obj[skey] = src
    obj[mkey] = msg
    fields = []
    for k, v in pairs:
        v = unq(v)
        if re.fullmatch(r'-?\d+', v) and len(v) < 10 and r.random() < 0.8:
            obj[k] = int(v)
        elif v in ('true', 'false'):
            obj[k] = v == 'true'
        else:
            obj[k] = v
        fields.append((k, json.dumps(obj[k]) if isinstance(obj[k], bool) else str(obj[k])))
    if skey and r.random() < 0.3:  # the source key after the message
        obj = {k: obj[k] for k in order + [mkey, skey] + [k for k, _ in pairs]}
    compact = r.random() < 0.6
    text = json.dumps(obj, ensure_ascii=False, separators=(',', ':') if compact else (', ', ': '))
    return text, rec(ts, canon, src, msg, fields)


ANDROID = [
    ('ActivityManager', 'Displayed {activity|activity}: +{_ms}ms', 'I'),
    ('Choreographer', 'Skipped {frames|frames} frames!  The application may be doing too much work on its main thread.', 'I'),
    ('OkHttp', '<-- HTTP FAILED: java.net.SocketTimeoutException: timeout', 'DE'),
    ('WorkManager', 'Worker result FAILURE for Work [ id={work_id|_uuid}, tags=SyncWorker ]', 'IE'),
    ('SQLiteLog', '(5) database is locked', 'E'),
    ('CameraService', 'Failed to connect to camera {camera|small}', 'EW'),
    ('BatteryStats', 'Battery level dropped to {battery|small}%', 'DW'),
]
GEN['_ms'] = lambda r: str(r.randint(180, 2400))
GEN['_uuid'] = lambda r: f'{hexs(r, 8)}-{hexs(r, 4)}-{hexs(r, 4)}-{hexs(r, 4)}-{hexs(r, 12)}'


def f_android(r):
    d = rand_dt(r)
    tag, tmpl, lvs = r.choice(ANDROID)
    lv = r.choice(lvs)
    msg, fields = fill(r, tmpl)
    pid = str(r.randint(800, 32000))
    canon = LEVEL_OF[lv]
    if r.random() < 0.6:
        tid = str(int(pid) + r.randint(0, 300))
        ts = f'{d:%m-%d %H:%M:%S}.{d.microsecond // 1000:03d}'
        return f'{ts} {pid:>5} {tid:>5} {lv} {tag}: {msg}', rec(ts, canon, tag, msg, [('pid', pid), ('tid', tid)] + fields)
    return f'{lv}/{tag}({pid:>5}): {msg}', rec(None, canon, tag, msg, [('pid', pid)] + fields)


def f_loguru(r):
    d = rand_dt(r)
    ts = spaced(d)
    msg, fields, lv = inline_msg(r)
    canon = LEVEL_OF[lv]
    w = 'WARNING' if canon == 'WARN' else ('CRITICAL' if canon == 'FATAL' else canon)
    src = f'{r.choice(["app.jobs", "worker.main", "api.deps", "core.cache", "__main__"])}:{r.choice(["run", "startup", "handle", "refresh", "<module>"])}:{r.randint(10, 300)}'
    return f'{ts} | {w:<8} | {src} - {msg}', rec(ts, canon, src, msg, fields)


def f_monolog(r):
    d = rand_dt(r)
    ts = f'{d:%Y-%m-%d %H:%M:%S}'
    chan = r.choice(['production', 'local', 'staging', 'payments', 'security'])
    msg, pairs, lv = kv_msg(r, 3)
    canon = LEVEL_OF[lv]
    w = {'WARN': 'WARNING', 'FATAL': 'CRITICAL'}.get(canon, canon)
    ctx = {k: unq(v) for k, v in pairs}
    if r.random() < 0.3:
        ctx = {}
    text = f'[{ts}] {chan}.{w}: {msg} ' + (json.dumps(ctx, separators=(',', ':')) if ctx else '[]') + ' []'
    return text, rec(ts, canon, chan, msg, list(ctx.items()))


def f_gostd(r):
    d = rand_dt(r)
    ts = f'{d:%Y/%m/%d %H:%M:%S}'
    cases = [
        ('http', 'panic serving {remote|_ipport}: runtime error: invalid memory address or nil pointer dereference'),
        ('server', 'listening on port {port|listen_port}'),
        ('proxy', 'error dialing backend {backend|_ipport}: i/o timeout'),
        (None, 'config loaded from {file|cfgpath}'),
        (None, 'shutting down gracefully'),
        ('cache', 'evicted {entries|count} entries'),
    ]
    src, tmpl = r.choice(cases)
    msg, fields = fill(r, tmpl)
    return (f'{ts} {src}: {msg}' if src else f'{ts} {msg}'), rec(ts, None, src, msg, fields)


GEN['_ipport'] = lambda r: f'{doc_ip(r)}:{r.randint(1025, 65000)}'


def f_serilog(r):
    d = rand_dt(r)
    msg, fields, lv = inline_msg(r)
    code = {'T': 'VRB', 'D': 'DBG', 'I': 'INF', 'W': 'WRN', 'E': 'ERR', 'F': 'FTL'}[lv]
    canon = LEVEL_OF[lv]
    if r.random() < 0.5:
        ts = f'{d:%H:%M:%S}'
        return f'[{ts} {code}] {msg}', rec(ts, canon, None, msg, fields)
    ts = f'{spaced(d)} {r.choice(["+00:00", "+01:00", "-03:00"])}'
    return f'{ts} [{code}] {msg}', rec(ts, canon, None, msg, fields)


def f_rails(r):
    d = rand_dt(r)
    ts = iso(r, d, frac='us', tz='')
    pid = str(r.randint(1000, 90000))
    cases = [
        ('I', 'Completed {status|_okstatus} OK in {_ms}ms (Views: 4.1ms | ActiveRecord: 1.7ms)', None),
        ('I', 'Started {_method} "{_path}" for {ip|ip} at {_railsts}', None),
        ('E', 'ActiveRecord::RecordNotFound (Couldn\'t find Order with \'id\'={order|_orderno}):', None),
        ('W', 'Can\'t verify CSRF token authenticity.', None),
        ('F', 'ActionController::RoutingError (No route matches [GET] "/wp-admin"):', None),
    ]
    lv, tmpl, _ = r.choice(cases)
    local = {'_okstatus': pick('200'), '_method': pick('GET', 'POST', 'PATCH'),
             '_path': pick('/orders/new', '/account', '/api/v1/carts', '/admin/reports'),
             '_railsts': lambda rr: f'{d:%Y-%m-%d %H:%M:%S} +0000', '_orderno': lambda rr: digits(rr, 5)}
    msg, fields = fill(r, tmpl, local)
    canon = LEVEL_OF[lv]
    prog = r.choice(['', '', 'sidekiq'])
    text = f'{lv}, [{ts} #{pid}] {canon:>5} -- {prog}: {msg}'
    return text, rec(ts, canon, prog or None, msg, [('pid', pid)] + fields)


def f_postgres(r):
    d = rand_dt(r)
    ts = spaced(d) + ' ' + r.choice(['UTC', 'CET', 'UTC'])
    pid = str(r.randint(1000, 90000))
    cases = [
        ('ERROR', 'duplicate key value violates unique constraint "{constraint|constraint}"'),
        ('FATAL', 'password authentication failed for user "{user|dbuser}"'),
        ('ERROR', 'canceling statement due to statement timeout'),
        ('ERROR', 'could not serialize access due to concurrent update'),
        ('FATAL', 'terminating connection due to administrator command'),
        ('WARNING', 'there is no transaction in progress'),
        ('FATAL', 'database "{database|dbname}" does not exist'),
    ]
    lw, tmpl = r.choice(cases)
    msg, fields = fill(r, tmpl)
    canon = {'WARNING': 'WARN'}.get(lw, lw)
    f = [('pid', pid)]
    if r.random() < 0.4:
        u, db = GEN['dbuser'](r), GEN['dbname'](r)
        text = f'{ts} [{pid}] {u}@{db} {lw}:  {msg}'
        f += [('user', u), ('database', db)]
        fields = [x for x in fields if x[0] not in ('user', 'database')]
    else:
        text = f'{ts} [{pid}] {lw}:  {msg}'
    return text, rec(ts, canon, None, msg, f + fields)


def f_mysql(r):
    d = rand_dt(r)
    ts = iso(r, d, frac='us', tz='Z')
    thread = str(r.randint(0, 400))
    cases = [
        ('Warning', 'MY-010055', 'Server', 'IP address \'{ip|ip}\' could not be resolved: Name or service not known'),
        ('Warning', 'MY-013360', 'Server', 'Plugin mysql_native_password reported: \'\'mysql_native_password\' is deprecated\''),
        ('ERROR', 'MY-012574', 'InnoDB', 'Unable to lock ./ibdata1 error: 11'),
        ('System', 'MY-010931', 'Server', None),
    ]
    lw, code, sub, tmpl = r.choice([c for c in cases if c[3]])
    msg, fields = fill(r, tmpl)
    canon = {'Warning': 'WARN', 'ERROR': 'ERROR'}[lw]
    return f'{ts} {thread} [{lw}] [{code}] [{sub}] {msg}', rec(ts, canon, sub, msg, [('thread', thread), ('code', code)] + fields)


def f_npm(r):
    pkg = GEN['package'](r)
    cases = [
        (f'npm WARN deprecated {pkg}: This module is not supported, and leaks memory.', 'WARN', 'npm', f'deprecated {pkg}: This module is not supported, and leaks memory.', [('package', pkg)]),
        ('npm ERR! code ERESOLVE', 'ERROR', 'npm', 'code ERESOLVE', [('code', 'ERESOLVE')]),
        (f'yarn warn {pkg}: No license field', 'WARN', 'yarn', f'{pkg}: No license field', [('package', pkg)]),
    ]
    text, lv, src, msg, fields = r.choice(cases)
    return text, rec(None, lv, src, msg, fields)


def f_bare(r):
    f = GEN['srcfile'](r)
    cases = [
        ('Segmentation fault (core dumped)', None, None, []),
        ('Traceback (most recent call last):', None, None, []),
        (f'warning: CRLF will be replaced by LF in {f}.', 'WARN', None, [('file', f)]),
        ('error: failed to push some refs to the remote', 'ERROR', None, []),
        ('fatal: not a git repository (or any of the parent directories): .git', 'FATAL', None, []),
        ('FATAL:  the database system is starting up', 'FATAL', None, []),
        ('Connection reset by peer', None, None, []),
        ('Killed process group, exiting with status 137', None, None, [('status', '137')]),
        ('Build finished in 41.2s', None, None, []),
        ('panic: assignment to entry in nil map', 'FATAL', None, []),
        ('WARN  no config file found, using built-in defaults', 'WARN', None, []),
    ]
    text, lv, src, fields = r.choice(cases)
    msg = re.sub(r'^(warning|error|fatal|FATAL|panic|WARN):\s+|^WARN\s+', '', text)
    return text, rec(None, lv, src, msg, fields)


def f_emoji(r):
    d = rand_dt(r)
    ts = iso(r, d, frac='none', tz='Z')
    svc = r.choice(SERVICES)
    icon, lv = r.choice([('🔥', 'E'), ('✅', 'I'), ('🚨', 'F'), ('🐛', 'D'), ('⏳', 'W')])
    msg, pairs, _ = kv_msg(r, 2)
    w, canon = level_word(r, lv)
    return f'{icon} {ts} {w} [{svc}] {msg} {kv_text(pairs)}', rec(ts, canon, svc, msg, kv_fields(pairs))


FORMATS = [  # (generator, count)
    (f_iso_bracket, 24), (f_iso_nosource, 6), (f_level_first, 6), (f_bracket_level, 5), (f_maven, 3),
    (f_syslog, 20), (f_syslog_iso, 5), (f_klog, 12), (f_python, 16), (f_celery, 3), (f_django_dev, 3),
    (f_java, 16), (f_access, 11), (f_nginx_error, 5), (f_apache_error, 4), (f_logfmt, 10), (f_json, 13),
    (f_android, 7), (f_loguru, 5), (f_monolog, 5), (f_gostd, 5), (f_serilog, 5), (f_rails, 5),
    (f_postgres, 6), (f_mysql, 3), (f_npm, 2), (f_bare, 6), (f_emoji, 3),
]

# ---------------------------------------------------------------- checks


def norm(s):
    return re.sub(r'\d', '0', s)


def make_validator(schema):
    try:
        import jsonschema  # noqa: PLC0415
        v = jsonschema.Draft202012Validator(schema)
        return lambda o: [e.message for e in v.iter_errors(o)], 'jsonschema'
    except ImportError:
        pass
    props = schema['properties']

    def check(o):
        errs = []
        if not isinstance(o, dict) or set(o) != set(schema['required']):
            return [f'keys {sorted(o) if isinstance(o, dict) else type(o)}']
        for k in ('timestamp', 'source'):
            if o[k] is not None and not isinstance(o[k], str):
                errs.append(f'{k} not string/null')
        if o['level'] not in props['level']['enum']:
            errs.append(f'level {o["level"]!r}')
        if not isinstance(o['message'], str):
            errs.append('message not a string')
        if not isinstance(o['fields'], list):
            return errs + ['fields not an array']
        for f in o['fields']:
            if not isinstance(f, dict) or set(f) != {'key', 'value'} or not all(isinstance(f[x], str) for x in ('key', 'value')):
                errs.append(f'field {f!r}')
        return errs
    return check, 'hand check'


def similarity(a, b):
    """difflib ratio of the two texts with every digit replaced by 0 (1.0: same after that)."""
    na, nb = norm(a), norm(b)
    return 1.0 if na == nb else difflib.SequenceMatcher(None, na, nb, autojunk=False).ratio()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', default=OUT_DEFAULT)
    p.add_argument('--seed', type=int, default=12)
    p.add_argument('--check-only', action='store_true', help='generate and check, write nothing')
    a = p.parse_args()
    with open(ADAPTER, encoding='utf-8') as f:
        schema = json.load(f)['schema']
    validate, how = make_validator(schema)
    eval_texts = []
    for path in EVAL:
        with open(path, encoding='utf-8') as f:
            eval_texts += [json.loads(line)['text'] for line in f if line.strip()]
    r = random.Random(a.seed)
    records, seen, rejected, max_sim = [], set(), {'duplicate': 0, 'near eval': 0}, 0.0
    for gen, count in FORMATS:
        made = tries = 0
        while made < count:
            tries += 1
            if tries > count * 50:
                sys.exit(f'{gen.__name__}: cannot make {count} distinct lines')
            text, out = gen(r)
            if norm(text) in seen:
                rejected['duplicate'] += 1
                continue
            sim = max(similarity(text, e) for e in eval_texts)
            if sim >= 0.85:
                rejected['near eval'] += 1
                continue
            errs = validate(out)
            if errs:
                sys.exit(f'{gen.__name__}: output fails the schema ({errs}): {text}\n{json.dumps(out)}')
            if out['message'] and out['message'] not in text and out['message'] != text:
                # the message is a substring of the line, except where an identifier was cut out of it
                if not (gen in (f_celery,)):
                    sys.exit(f'{gen.__name__}: message not in the text: {text!r} / {out["message"]!r}')
            if out['timestamp'] is not None and out['timestamp'] not in text:
                sys.exit(f'{gen.__name__}: timestamp not as written: {text!r} / {out["timestamp"]!r}')
            for fld in out['fields']:
                if fld['value'] not in text:
                    sys.exit(f'{gen.__name__}: field value not in the text: {text!r} / {fld}')
            seen.add(norm(text))
            records.append((text, out))
            max_sim = max(max_sim, sim)
            made += 1
    order = list(range(len(records)))
    r.shuffle(order)
    lines = [json.dumps({'id': f'log-line-train-{i + 1:03d}', 'text': records[j][0], 'output': records[j][1]}, ensure_ascii=False)
             for i, j in enumerate(order)]
    print(f'{len(lines)} records, {len(FORMATS)} formats; schema check: {how}; rejected while generating: {rejected}; '
          f'highest similarity of a kept text to an eval text {max_sim:.2f} (limit 0.85, digits -> 0)', file=sys.stderr)
    if not a.check_only:
        os.makedirs(os.path.dirname(a.out), exist_ok=True)
        with open(a.out, 'w', encoding='utf-8') as f:
            f.write('\n'.join(lines) + '\n')
        print(f'wrote {a.out}', file=sys.stderr)


if __name__ == '__main__':
    main()
