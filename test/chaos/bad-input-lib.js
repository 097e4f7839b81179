'use strict';
/**
 * The bad-input campaign: hostile requests against the CMQ endpoint (queue-api) and the internal
 * API and console (billing-api), each with the answer the documents fix for it, generated from a
 * seed; and the global checks around them: no 5xx, no CMQ 6000, nothing stored but the usage of
 * requests that passed authentication (billing.md §1), nothing of another tenant's leaked, no
 * stack trace, SQL or file path in any reply.
 *
 * Plain CommonJS with no dependency on the product's code (it signs as a client does, from the
 * protocol reference), so the same module drives `test/chaos/bad-input.js` (processes from dist/)
 * and `test/bad-input-campaign.e2e-spec.ts` (a TestStack).
 *
 * What the answers come from: /work/shared/spec/cmq-protocol.md §3, §4, §6–§10 (codes and
 * messages), docs/architecture.md (decode, authenticate, region, act; the decisions list; the
 * console's confinement), README (the internal API, its roles and problem details).
 */
const http = require('node:http');
const { createHmac, createHash } = require('node:crypto');

// ---------------------------------------------------------------- seeded randomness

/** sfc32 seeded through a string hash: the same seed gives the same campaign. */
class Rng {
  constructor(seed) {
    let h = 1779033703 ^ String(seed).length;
    for (const ch of String(seed)) {
      h = Math.imul(h ^ ch.charCodeAt(0), 3432918353);
      h = (h << 13) | (h >>> 19);
    }
    const next = () => {
      h = Math.imul(h ^ (h >>> 16), 2246822507);
      h = Math.imul(h ^ (h >>> 13), 3266489909);
      return (h ^= h >>> 16) >>> 0;
    };
    this.s = [next(), next(), next(), next()];
  }

  /** uniform in [0, 1) */
  next() {
    let [a, b, c, d] = this.s;
    a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    this.s = [a, b, c, d];
    return (t >>> 0) / 4294967296;
  }

  /** integer in [0, n) */
  int(n) {
    return Math.floor(this.next() * n);
  }

  /** integer in [lo, hi] */
  range(lo, hi) {
    return lo + this.int(hi - lo + 1);
  }

  pick(list) {
    return list[this.int(list.length)];
  }

  chance(p) {
    return this.next() < p;
  }

  /** `n` characters of [a-z0-9] */
  word(n) {
    const abc = 'abcdefghijklmnopqrstuvwxyz0123456789';
    let s = '';
    for (let i = 0; i < n; i++) s += abc[this.int(abc.length)];
    return s;
  }

  hex(n) {
    let s = '';
    for (let i = 0; i < n; i++) s += '0123456789abcdef'[this.int(16)];
    return s;
  }
}

// ---------------------------------------------------------------- the CMQ wire, as a client does it

/** spec §4.1: METHOD + host + path + "?" + sorted key=value pairs, `_` in keys as `.`, raw values. */
function sourceString(method, host, path, pairs) {
  const kept = pairs.filter(([k]) => k !== 'Signature').sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return method.toUpperCase() + host + path + '?' + kept.map(([k, v]) => `${k.replace(/_/g, '.')}=${v}`).join('&');
}

function hmac(alg, key, text) {
  return createHmac(alg, key).update(text, 'utf8').digest('base64');
}

/** application/x-www-form-urlencoded, every value percent-encoded (spaces as %20, like qcloudapi-sdk). */
function formEncode(pairs) {
  return pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
}

/** Parameters as pairs; an array value becomes `name.1`, `name.2`, … (or from `base`). */
function pairsOf(params, base = 1) {
  if (Array.isArray(params)) return params.map(([k, v]) => [k, String(v)]);
  const out = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) v.forEach((item, i) => out.push([`${k}.${i + base}`, String(item)]));
    else out.push([k, String(v)]);
  }
  return out;
}

// ---------------------------------------------------------------- the documented answers

/** spec §6: [code, message] of each fault this campaign provokes. */
const E = {
  invalidParameters: [4000, '(10000)invalid request parameters'],
  queueNameFormat: [4000, '(10020)queue name format error'],
  emptyBody: [4000, "(10120)message body can't be empty"],
  keyFormat: (k) => [4000, `(10310)error: parameter ${k} key format error`],
  notRepeatable: (k) => [4000, `(10330)parameter ${k} is NOT a repeatable parameter`],
  outOfRange: (k) => [4000, `(10350)parameter ${k} value or length is out of range`],
  errorType: (k) => [4000, `(10360)parameter ${k} error type`],
  batchSize: (k) => [4000, `(10370)${k} parameter batch size is out of range`],
  notConsecutive: (k) => [4000, `(10380)${k} parameter is not consequent`],
  missing: (k) => [4000, `(10390)lacked of required parameter ${k}`],
  method: (m) => [4000, `(10410)unexpected http ${m} only GET or POST is supported`],
  cannotParse: [4000, '(10420)cannot parse request, or request size is more than 1MB'],
  unknownAction: (a) => [4000, `(10430)action name ${a.slice(0, 64)} is not existed`],
  delay: [4000, '(10692)delay seconds is out of range'],
  dlNotJson: [4000, '(10710)deadLetterPolicy must be a json string'],
  dlParams: [4000, '(10720)deadLetterPolicy params error,please check it'],
  dlMissing: [4000, '(10730)deadLetter queue not exist'],
  dlQueueMember: [4000, '(10760)the deadLetterPolicy must has deadLetterQueue member, only be a string'],
  dlPolicyMember: [4000, '(10770)the deadLetterPolicy must has policy member , only set 0 or 1'],
  topicNameFormat: [4000, '(10590)topic name format error'],
  subNameFormat: [4000, '(10580)subscription name format error'],
  endpointFormat: [4000, '(10500)endpoint format error'],
  undefinedProtocol: [4000, '(10510)undefined protocol'],
  notifyStrategy: [4000, '(10520)undefined notify retry stragety'],
  contentFormat: [4000, '(10530)undefined notify content format'],
  illegalEndpoint: [4000, '(10630)illegal endpoint'],
  queueNeedsSimplified: [4000, '(10640)notifyContentFormat of protocol queue must be SIMPLIFIED'],
  tooManyFilterTags: [4000, '(10670)too many filterTag'],
  tooManyBindingKeys: [4000, '(10680)too many bindingKey'],
  tooManyDelimiters: [4000, '(10691)too many delimeters'],
  lackRoutingKey: [4000, '(10700)parameters lack of routingKey'],
  tooManyMsgTags: [4000, '(10720)too many msgTag'],
  authFailed: [4100, '(10030)authentication failed'],
  keyDisabled: [4100, '(10080)secret id status error'],
  unknownSecretId: [4100, '(10270)secret id is not existed'],
  tooBig: [4400, '(10230)exceed maximum message size'],
  handleInvalid: [4430, '(10260)receipt handle is invalid'],
  queueNotExist: [4440, '(10100)queue is not existed, or deleted'],
  topicNotExist: [4440, '(10600)topic is not existed, or deleted'],
  /** the spec gives no text for a missing subscription: the code only */
  subscriptionNotExist: [4440, undefined],
  batchTooBig: [4470, '(10300)total message size exceed 1MB'],
  endpointBlank: [4510, '(10570)url connot contain any blank characters'],
  batchDeleteFailed: [6020, '(10290)batch delete message failed'],
  ok: [0, ''],
};

/** billing.md §1: the outcome a reply code is metered as (architecture.md: 6010 ok, 6020–6050 the caller's). */
function outcomeOf(code) {
  if (code === 0 || code === 6010) return 'ok';
  if (code === 7000) return 'no_message';
  if (code === 4420) return 'throttled';
  if (code === 4300) return 'overdue';
  if ([6020, 6030, 6040, 6050].includes(code)) return 'client_error';
  if (code >= 6000 && code < 7000) return 'server_error';
  return 'client_error';
}

const ACTIONS = [
  'CreateQueue', 'ListQueue', 'GetQueueAttributes', 'SetQueueAttributes', 'DeleteQueue', 'SendMessage', 'BatchSendMessage',
  'ReceiveMessage', 'BatchReceiveMessage', 'DeleteMessage', 'BatchDeleteMessage', 'RewindQueue', 'UnbindDeadLetterQueue',
  'ListDeadLetterSourceQueues', 'QueryQueueRoute', 'CreateTopic', 'SetTopicAttributes', 'GetTopicAttributes', 'DeleteTopic',
  'ListTopic', 'PublishMessage', 'BatchPublishMessage', 'Subscribe', 'Unsubscribe', 'SetSubscriptionAttributes',
  'GetSubscriptionAttributes', 'ListSubscriptionByTopic', 'ClearSubscriptionFilterTags', 'QueryTopicRoute',
];
const CANONICAL = new Map(ACTIONS.map((a) => [a.toLowerCase(), a]));

/** size bands of billing.md §1, for the one kind of request here that is billed (a replayed send's first copy) */
function sizeWeight(bytes) {
  for (const [limit, w] of [[2048, 1], [4096, 2], [16384, 4], [102400, 16]]) if (bytes <= limit) return w;
  return 64;
}

// ---------------------------------------------------------------- case builders

const CATEGORIES = ['malformed', 'oversized', 'mis-signed', 'replayed', 'cross-tenant'];

/**
 * A CMQ request from its parts, signed at send time (fresh Timestamp) unless told otherwise.
 * `o`: key, action, params (pairs or object), method (GET/POST), path, host (signed), hostHeader
 * (sent), signMethod/signPath/signHost (what the signature covers), alg, signatureMethod,
 * timestampOffset, timestamp (fixed), omit (names left out before signing), tamper (pairs →
 * pairs after signing), headers, contentType, bodyOverride (pairs → string|Buffer), query (a
 * query string on a POST), nonce.
 */
function cmqRequest(fx, o) {
  return () => {
    const method = o.method || 'POST';
    const path = o.path || '/v2/index.php';
    const key = o.key;
    let pairs = [['Action', o.action]];
    if (key) pairs.push(['SecretId', key.secretId]);
    pairs.push(['Timestamp', o.timestamp !== undefined ? String(o.timestamp) : String(Math.floor(Date.now() / 1000) + (o.timestampOffset || 0))]);
    pairs.push(['Nonce', o.nonce]);
    pairs.push(['RequestClient', 'bad-input-campaign']);
    if (o.signatureMethod) pairs.push(['SignatureMethod', o.signatureMethod]);
    pairs.push(...pairsOf(o.params || {}));
    if (o.omit) pairs = pairs.filter(([k]) => !o.omit.includes(k));
    if (key && !(o.omit || []).includes('Signature')) {
      const src = sourceString(o.signMethod || method, o.signHost || fx.cmq.host, o.signPath || path, pairs);
      pairs.push(['Signature', hmac(o.alg || 'sha1', o.signKey !== undefined ? o.signKey : key.secretKey, src)]);
    }
    if (o.tamper) pairs = o.tamper(pairs);
    const encoded = o.bodyOverride ? o.bodyOverride(pairs) : formEncode(pairs);
    const headers = { ...(o.headers || {}) };
    if (o.hostHeader) headers.host = o.hostHeader;
    if (method === 'GET') {
      return { port: fx.cmq.port, method, path: `${path}?${encoded}`, headers, plain: pairs, fresh: o.fresh };
    }
    if (o.contentType !== null) headers['content-type'] = o.contentType || 'application/x-www-form-urlencoded';
    return { port: fx.cmq.port, method, path: o.query ? `${path}?${o.query}` : path, headers, body: encoded, plain: pairs, fresh: o.fresh, chunked: o.chunked };
  };
}

/**
 * One CMQ case: `expect` is [code, message]; `meter` the resource it is metered under (with the
 * canonical action), or null when it must not be metered (refused before authentication).
 */
function cmqCase(fx, cat, tpl, o, expect, meter) {
  const action = CANONICAL.get(String(o.action).toLowerCase()) || o.action;
  return {
    cat,
    target: 'cmq',
    tpl,
    mode: 'one',
    make: [cmqRequest(fx, o)],
    expect: [{ http: 200, code: expect[0], message: expect[1] }],
    meters: [meter === null ? null : { action, outcome: outcomeOf(expect[0]), resource: meter }],
    describe: `${o.method || 'POST'} ${o.action} ${JSON.stringify(pairsOf(o.params || {}).map(([k, v]) => [k, v.length > 40 ? `${v.slice(0, 40)}…(${v.length})` : v]))}`,
  };
}

/** One internal-API request; `expect`: status and the problem's detail (string, RegExp, or any non-empty reason). */
function apiCase(fx, cat, tpl, o, status, detail, extra = {}) {
  return {
    cat,
    target: 'api',
    tpl,
    mode: 'one',
    make: [
      () => {
        const headers = { ...(o.headers || {}) };
        if (o.token !== undefined && o.token !== null) headers.authorization = o.rawAuth ? o.token : `Bearer ${o.token}`;
        let body = o.body;
        if (body !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body)) body = JSON.stringify(body);
        if (body !== undefined && !('content-type' in headers)) headers['content-type'] = 'application/json';
        return { port: fx.api.port, method: o.method, path: o.path, headers, body, fresh: o.fresh };
      },
    ],
    expect: [{ status, detail, json: extra.json }],
    meters: [extra.meter || null],
    describe: `${o.method} ${o.path.length > 120 ? o.path.slice(0, 120) + '…' : o.path}${o.body !== undefined ? ' ' + String(typeof o.body === 'string' ? o.body : JSON.stringify(o.body)).slice(0, 80) : ''}`,
  };
}

/** The console's CMQ call as A's sign-in: HTTP 200 with the CMQ reply, metered as a CMQ request of A. */
function consoleCmqCase(fx, cat, tpl, action, params, expect, resource) {
  const c = apiCase(fx, cat, tpl, { method: 'POST', path: '/console/api/cmq', token: fx.A.console, body: { action, params } }, 200, undefined);
  c.expect = [{ status: 200, cmq: { code: expect[0], message: expect[1] } }];
  c.meters = [{ action: CANONICAL.get(action.toLowerCase()), outcome: outcomeOf(expect[0]), resource }];
  return c;
}

// ---------------------------------------------------------------- templates

const SQLI = ["' OR '1'='1", "'; DROP TABLE queues;--", '" OR ""="', "1; SELECT pg_sleep(5)--", "') UNION SELECT secret_key_enc FROM access_keys--", '\\x27 OR 1=1', '%27%20OR%201=1'];
const TRAVERSAL = ['../../etc/passwd', '..%2F..%2Fetc%2Fpasswd', '..\\..\\windows\\win.ini', '/etc/passwd', '....//....//etc/passwd', '%2e%2e%2f%2e%2e%2f'];
const BAD_NAMES = ['1abc', '', ' ', 'a b', 'q.x', 'q/x', 'q;x', '<script>alert(1)</script>', 'é', '队列', 'q\u0000', '-q', '_q', 'q\nx', '😀', ...SQLI, ...TRAVERSAL];
const NOT_INTS = ['abc', '1.5', '', ' 1', '1e3', '0x10', '+1', '١', 'NaN', 'Infinity', '1_000', '--1', '1-'];

/**
 * Every template: [category, name, weight, make(r, fx) → case]. Weights set the mix; big bodies
 * (megabytes) are rare so a run stays bounded.
 */
function templates() {
  const T = [];
  const add = (cat, name, weight, make) => T.push({ cat, name, weight, make });
  const nonce = (r) => String(r.int(2 ** 31));
  const A = (fx) => fx.A.key;

  // ------------------------------------------------------------ malformed: CMQ
  add('malformed', 'bad percent escape', 3, (r, fx) => {
    const bad = r.pick(['%', '%4', '%ZZ', '%G1', '%%', '%-1', '%u0041']);
    return cmqCase(fx, 'malformed', 'bad percent escape', {
      key: A(fx), action: 'SendMessage', nonce: nonce(r), params: { queueName: fx.A.queues.main, msgBody: 'x' },
      bodyOverride: (p) => formEncode(p).replace('msgBody=x', `msgBody=x${bad}`),
    }, E.cannotParse, null);
  });
  add('malformed', 'invalid UTF-8 (escaped)', 3, (r, fx) => {
    const bad = r.pick(['%C3%28', '%FF', '%FE%FF', '%ED%A0%80', '%F4%90%80%80', '%C0%AF', '%E4%B8', '%80', '%F0%9F%98']);
    return cmqCase(fx, 'malformed', 'invalid UTF-8 (escaped)', {
      key: A(fx), action: r.pick(['SendMessage', 'CreateQueue', 'PublishMessage']), nonce: nonce(r),
      params: { queueName: fx.A.queues.main, topicName: fx.A.topics.tags, msgBody: 'x' },
      bodyOverride: (p) => formEncode(p).replace('msgBody=x', `msgBody=${bad}`),
    }, E.cannotParse, null);
  });
  add('malformed', 'invalid UTF-8 (raw bytes)', 2, (r, fx) => {
    const bad = Buffer.from(r.pick([[0xff], [0xfe, 0xff], [0xc3, 0x28], [0x80], [0xed, 0xa0, 0x80], [0xe4, 0xb8]]));
    return cmqCase(fx, 'malformed', 'invalid UTF-8 (raw bytes)', {
      key: A(fx), action: 'SendMessage', nonce: nonce(r), params: { queueName: fx.A.queues.main, msgBody: 'x' },
      bodyOverride: (p) => {
        const s = formEncode(p);
        const at = s.indexOf('msgBody=x') + 'msgBody='.length;
        return Buffer.concat([Buffer.from(s.slice(0, at)), bad, Buffer.from(s.slice(at + 1))]);
      },
    }, E.cannotParse, null);
  });
  add('malformed', 'truncated body', 4, (r, fx) => {
    // cut a signed body somewhere after the Nonce: the Signature is lost (10390), or a broken
    // escape remains (10420), or the Signature itself is cut (10030)
    const o = { key: A(fx), action: 'SendMessage', nonce: nonce(r), params: { queueName: fx.A.queues.main, msgBody: `trunc-${r.word(12)}`, delaySeconds: '0' } };
    const inSignature = r.chance(0.4);
    const frac = r.next();
    let expect = E.missing('Signature');
    const c = cmqCase(fx, 'malformed', 'truncated body', o, expect, null);
    c.make = [
      () => {
        const req = cmqRequest(fx, o)();
        const body = req.body;
        const sigAt = body.indexOf('&Signature=');
        let cut;
        if (inSignature) {
          const start = sigAt + '&Signature='.length;
          cut = start + Math.floor(frac * (body.length - start));
        } else {
          const from = body.indexOf('&RequestClient=');
          cut = from + 1 + Math.floor(frac * (sigAt - from));
        }
        req.body = body.slice(0, cut);
        const partial = /%[0-9A-Fa-f]?$/.test(req.body);
        req.expectOverride = partial ? E.cannotParse : inSignature ? E.authFailed : E.missing('Signature');
        return req;
      },
    ];
    c.describe += inSignature ? ' (cut in the Signature)' : ' (cut before the Signature)';
    return c;
  });
  add('malformed', 'missing common parameter', 4, (r, fx) => {
    const omitted = r.pick([['SecretId'], ['Timestamp'], ['Nonce'], ['Signature'], ['Nonce', 'Signature'], ['SecretId', 'Signature']]);
    const first = ['SecretId', 'Timestamp', 'Nonce', 'Signature'].find((n) => omitted.includes(n));
    return cmqCase(fx, 'malformed', 'missing common parameter', {
      key: A(fx), action: r.pick(['SendMessage', 'ListQueue', 'CreateQueue']), nonce: nonce(r), omit: omitted,
      params: { queueName: fx.A.queues.main, msgBody: 'x' },
    }, E.missing(first), null);
  });
  add('malformed', 'missing or empty Action', 2, (r, fx) => {
    const empty = r.chance(0.5);
    return cmqCase(fx, 'malformed', 'missing or empty Action', {
      key: A(fx), action: empty ? '' : 'SendMessage', nonce: nonce(r), omit: empty ? [] : ['Action'],
      params: { queueName: fx.A.queues.main, msgBody: 'x' },
    }, E.missing('Action'), null);
  });
  add('malformed', 'Timestamp of the wrong type', 3, (r, fx) =>
    cmqCase(fx, 'malformed', 'Timestamp of the wrong type', {
      key: A(fx), action: 'ListQueue', nonce: nonce(r), timestamp: r.pick(['abc', '1.7e9', '-1', '', ' 1700000000', '1700000000.5', '1234567890123', '0x65000000', '１７']),
    }, E.errorType('Timestamp'), null));
  add('malformed', 'unknown action', 3, (r, fx) => {
    const action = r.pick(['DropQueue', 'SendMessages', 'Send_Message', "SendMessage'--", 'A'.repeat(r.range(65, 300)), '../../etc/passwd', '<script>', 'ListQueue\u0000', 'CreateCmqQueue', 'PushMessage', 'constructor', '__proto__', 'toString', 'hasOwnProperty']);
    return cmqCase(fx, 'malformed', 'unknown action', { key: A(fx), action, nonce: nonce(r), params: { queueName: fx.A.queues.main } }, E.unknownAction(action), null);
  });
  add('malformed', 'duplicated parameter', 3, (r, fx) => {
    const dup = r.pick(['Action', 'queueName', 'SecretId', 'msgBody', 'Signature', 'Timestamp']);
    return cmqCase(fx, 'malformed', 'duplicated parameter', {
      key: A(fx), action: 'SendMessage', nonce: nonce(r), params: { queueName: fx.A.queues.main, msgBody: 'x' },
      tamper: (p) => [...p, [dup, dup === 'queueName' ? fx.B.queues.held : p.find(([k]) => k === dup)[1]]],
    }, E.notRepeatable(dup), null);
  });
  add('malformed', 'bad parameter key', 2, (r, fx) => {
    const long = r.chance(0.5);
    const key = long ? 'k'.repeat(r.range(129, 2000)) : '';
    return cmqCase(fx, 'malformed', 'bad parameter key', {
      key: A(fx), action: 'ListQueue', nonce: nonce(r),
      bodyOverride: (p) => `${formEncode(p)}&${key}=v`,
    }, E.keyFormat(key.slice(0, 128)), null);
  });
  add('malformed', 'JSON body where a form is expected', 3, (r, fx) => {
    const doc = { Action: r.pick(['SendMessage', 'ListQueue']), SecretId: fx.A.key.secretId, queueName: fx.A.queues.main, msgBody: `hi-${r.word(r.range(1, 120))}` };
    const text = JSON.stringify(doc);
    return cmqCase(fx, 'malformed', 'JSON body where a form is expected', {
      key: A(fx), action: 'SendMessage', nonce: nonce(r), contentType: 'application/json', bodyOverride: () => text,
    }, text.length > 128 ? E.keyFormat(text.slice(0, 128)) : E.missing('Action'), null);
  });
  add('malformed', 'multipart or XML body', 2, (r, fx) => {
    const xml = r.chance(0.5);
    const text = xml
      ? `<?xml version="1.0"?><Request><Action>SendMessage</Action><queueName>${fx.A.queues.main}</queueName></Request>`
      : `--B${r.word(8)}\r\nContent-Disposition: form-data; name="Action"\r\n\r\nSendMessage\r\n--B--\r\n`;
    return cmqCase(fx, 'malformed', 'multipart or XML body', {
      key: A(fx), action: 'SendMessage', nonce: nonce(r), contentType: xml ? 'text/xml' : 'multipart/form-data; boundary=B', bodyOverride: () => text,
    }, E.missing('Action'), null);
  });
  add('malformed', 'odd HTTP method', 3, (r, fx) => {
    const method = r.pick(['PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND', 'MKCOL', 'COPY', 'LOCK']);
    return cmqCase(fx, 'malformed', 'odd HTTP method', {
      key: A(fx), action: 'SendMessage', nonce: nonce(r), method, signMethod: 'POST', fresh: true,
      params: { queueName: fx.A.queues.main, msgBody: 'x' },
    }, E.method(method), null);
  });
  add('malformed', 'odd content type, missing parameter', 3, (r, fx) => {
    const contentType = r.pick([null, 'application/json', 'text/xml', 'multipart/form-data; boundary=x', '*/*; charset=utf-8', 'application/octet-stream', 'text/plain; charset=iso-8859-1', 'image/png', 'x/y; a="b']);
    const [action, params, missing, resource] = r.pick([
      ['SendMessage', { queueName: fx.A.queues.main }, 'msgBody', fx.A.queues.main],
      ['SendMessage', { msgBody: 'x' }, 'queueName', ''],
      ['DeleteMessage', { queueName: fx.A.queues.main }, 'receiptHandle', fx.A.queues.main],
      ['BatchReceiveMessage', { queueName: fx.A.queues.main }, 'numOfMsg', fx.A.queues.main],
      ['CreateTopic', {}, 'topicName', ''],
      ['Subscribe', { topicName: fx.A.topics.tags, subscriptionName: `s${r.word(6)}` }, 'protocol', fx.A.topics.tags],
      ['RewindQueue', { queueName: fx.A.queues.main }, 'startConsumeTime', fx.A.queues.main],
      ['ListDeadLetterSourceQueues', {}, 'deadLetterQueueName', ''],
    ]);
    const c = cmqCase(fx, 'malformed', 'odd content type, missing parameter', { key: A(fx), action, nonce: nonce(r), contentType, params }, E.missing(missing), resource);
    c.describe += ` content-type=${contentType}`;
    return c;
  });
  add('malformed', 'POST parameters smuggled in the query', 2, (r, fx) =>
    cmqCase(fx, 'malformed', 'POST parameters smuggled in the query', {
      key: A(fx), action: 'SendMessage', nonce: nonce(r), params: { msgBody: `smuggled-${r.word(8)}` },
      query: `queueName=${fx.A.queues.main}&Action=SendMessage`,
    }, E.missing('queueName'), ''));
  add('malformed', 'integer parameter of the wrong type', 8, (r, fx) => {
    const bad = r.pick(NOT_INTS);
    const [action, params, name, resource] = r.pick([
      ['SendMessage', { queueName: fx.A.queues.main, msgBody: 'x', delaySeconds: bad }, 'delaySeconds', fx.A.queues.main],
      ['BatchSendMessage', { queueName: fx.A.queues.main, msgBody: ['x', 'y'], delaySeconds: bad }, 'delaySeconds', fx.A.queues.main],
      ['CreateQueue', { queueName: `fresh-${r.word(10)}`, visibilityTimeout: bad }, 'visibilityTimeout', null],
      ['CreateQueue', { queueName: `fresh-${r.word(10)}`, maxMsgSize: bad }, 'maxMsgSize', null],
      ['CreateQueue', { queueName: `fresh-${r.word(10)}`, msgRetentionSeconds: bad }, 'msgRetentionSeconds', null],
      ['CreateQueue', { queueName: `fresh-${r.word(10)}`, maxMsgHeapNum: bad }, 'maxMsgHeapNum', null],
      ['SetQueueAttributes', { queueName: fx.A.queues.main, rewindSeconds: bad }, 'rewindSeconds', fx.A.queues.main],
      ['BatchReceiveMessage', { queueName: fx.A.queues.main, numOfMsg: bad }, 'numOfMsg', fx.A.queues.main],
      ['ReceiveMessage', { queueName: fx.A.queues.main, pollingWaitSeconds: bad }, 'pollingWaitSeconds', fx.A.queues.main],
      ['ListQueue', { offset: bad }, 'offset', ''],
      ['ListQueue', { limit: bad }, 'limit', ''],
      ['ListTopic', { offset: bad }, 'offset', ''],
      ['RewindQueue', { queueName: fx.A.queues.main, startConsumeTime: bad }, 'startConsumeTime', fx.A.queues.main],
      ['CreateTopic', { topicName: `fresh-${r.word(10)}`, maxMsgSize: bad }, 'maxMsgSize', null],
      ['CreateTopic', { topicName: `fresh-${r.word(10)}`, filterType: bad }, 'filterType', null],
      ['ListSubscriptionByTopic', { topicName: fx.A.topics.tags, limit: bad }, 'limit', fx.A.topics.tags],
    ]);
    // delaySeconds: not digits is 10360, digits out of range 10692
    const expect = name === 'delaySeconds' ? (/^-?\d+$/.test(bad) ? E.delay : E.errorType('delaySeconds')) : E.errorType(name);
    return cmqCase(fx, 'malformed', 'integer parameter of the wrong type', { key: A(fx), action, nonce: nonce(r), params }, expect, resource ?? params.queueName ?? params.topicName);
  });
  add('malformed', 'integer parameter out of range', 8, (r, fx) => {
    const huge = r.pick(['99999999999999999999', '-99999999999999999999', '9007199254740993', '18446744073709551616']);
    const [action, params, name, resource] = r.pick([
      ['CreateQueue', { queueName: `fresh-${r.word(10)}`, visibilityTimeout: r.pick(['0', '43201', '-5', huge]) }, 'visibilityTimeout', null],
      ['CreateQueue', { queueName: `fresh-${r.word(10)}`, maxMsgSize: r.pick(['1023', '1048577', '0', huge]) }, 'maxMsgSize', null],
      ['CreateQueue', { queueName: `fresh-${r.word(10)}`, msgRetentionSeconds: r.pick(['59', '1296001', huge]) }, 'msgRetentionSeconds', null],
      ['CreateQueue', { queueName: `fresh-${r.word(10)}`, pollingWaitSeconds: r.pick(['31', '-1', '30000']) }, 'pollingWaitSeconds', null],
      ['CreateQueue', { queueName: `fresh-${r.word(10)}`, maxMsgHeapNum: r.pick(['999999', '1000000001', '-1', huge]) }, 'maxMsgHeapNum', null],
      ['CreateQueue', { queueName: `fresh-${r.word(10)}`, rewindSeconds: r.pick(['-1', '1296001']) }, 'rewindSeconds', null],
      ['BatchReceiveMessage', { queueName: fx.A.queues.main, numOfMsg: r.pick(['0', '17', '-1', '1000000', huge]) }, 'numOfMsg', fx.A.queues.main],
      ['ReceiveMessage', { queueName: fx.A.queues.main, pollingWaitSeconds: r.pick(['-1', '-99999999999999999999']) }, 'pollingWaitSeconds', fx.A.queues.main],
      ['ListQueue', { offset: r.pick(['-1', '1000001', huge]) }, 'offset', ''],
      ['ListQueue', { limit: r.pick(['0', '-1']) }, 'limit', ''],
      ['ListSubscriptionByTopic', { topicName: fx.A.topics.tags, offset: r.pick(['-1', '1001']) }, 'offset', fx.A.topics.tags],
      ['ListSubscriptionByTopic', { topicName: fx.A.topics.tags, limit: r.pick(['-1', '101']) }, 'limit', fx.A.topics.tags],
      ['CreateTopic', { topicName: `fresh-${r.word(10)}`, maxMsgSize: r.pick(['1023', '1048577']) }, 'maxMsgSize', null],
      ['CreateTopic', { topicName: `fresh-${r.word(10)}`, filterType: r.pick(['0', '3', '-1']) }, 'filterType', null],
      ['RewindQueue', { queueName: fx.A.queues.main, startConsumeTime: r.pick(['-1', huge.replace(/^-/, '-')]) }, 'startConsumeTime', fx.A.queues.main],
      ['ListQueue', { Region: r.pick(['xx', 'sh', 'GZ', 'gz ', '../gz']) }, 'Region', ''],
    ]);
    return cmqCase(fx, 'malformed', 'integer parameter out of range', { key: A(fx), action, nonce: nonce(r), params }, E.outOfRange(name), name === 'Region' ? '' : resource ?? params.queueName ?? params.topicName);
  });
  add('malformed', 'delaySeconds out of range', 2, (r, fx) =>
    cmqCase(fx, 'malformed', 'delaySeconds out of range', {
      key: A(fx), action: r.pick(['SendMessage', 'BatchSendMessage']), nonce: nonce(r),
      params: { queueName: fx.A.queues.main, msgBody: 'x', delaySeconds: r.pick(['-1', '6048001', '99999999999', '-0000001', '99999999999999999999999']) },
    }, E.delay, fx.A.queues.main));
  add('malformed', 'invalid queue name', 6, (r, fx) => {
    const name = r.pick(BAD_NAMES);
    const action = r.pick(['CreateQueue', 'SendMessage', 'GetQueueAttributes', 'DeleteQueue', 'ReceiveMessage', 'SetQueueAttributes', 'BatchSendMessage', 'DeleteMessage', 'RewindQueue', 'QueryQueueRoute']);
    const params = { queueName: name, msgBody: 'x', receiptHandle: '1-1', startConsumeTime: '1' };
    return cmqCase(fx, 'malformed', 'invalid queue name', { key: A(fx), action, nonce: nonce(r), params }, E.queueNameFormat, '');
  });
  add('malformed', 'invalid topic or subscription name', 4, (r, fx) => {
    const name = r.pick(BAD_NAMES);
    if (r.chance(0.5)) {
      const action = r.pick(['CreateTopic', 'PublishMessage', 'GetTopicAttributes', 'DeleteTopic', 'Subscribe', 'ListSubscriptionByTopic']);
      return cmqCase(fx, 'malformed', 'invalid topic or subscription name', { key: A(fx), action, nonce: nonce(r), params: { topicName: name, msgBody: 'x', subscriptionName: 's1', protocol: 'queue', endpoint: fx.A.queues.main } }, E.topicNameFormat, '');
    }
    const action = r.pick(['Subscribe', 'Unsubscribe', 'GetSubscriptionAttributes', 'SetSubscriptionAttributes', 'ClearSubscriptionFilterTags']);
    return cmqCase(fx, 'malformed', 'invalid topic or subscription name', { key: A(fx), action, nonce: nonce(r), params: { topicName: fx.A.topics.tags, subscriptionName: name, protocol: 'queue', endpoint: fx.A.queues.main } }, E.subNameFormat, fx.A.topics.tags);
  });
  add('malformed', 'missing action parameter', 4, (r, fx) => {
    const [action, params, missing, resource] = r.pick([
      ['SendMessage', { queueName: fx.A.queues.main }, 'msgBody', fx.A.queues.main],
      ['BatchSendMessage', { queueName: fx.A.queues.main }, 'msgBody', fx.A.queues.main],
      ['GetQueueAttributes', {}, 'queueName', ''],
      ['DeleteMessage', { queueName: fx.A.queues.main }, 'receiptHandle', fx.A.queues.main],
      ['BatchDeleteMessage', { queueName: fx.A.queues.main }, 'receiptHandle', fx.A.queues.main],
      ['PublishMessage', { topicName: fx.A.topics.tags }, 'msgBody', fx.A.topics.tags],
      ['Subscribe', { topicName: fx.A.topics.tags, subscriptionName: 's2', protocol: 'http' }, 'endpoint', fx.A.topics.tags],
      ['Unsubscribe', { topicName: fx.A.topics.tags }, 'subscriptionName', fx.A.topics.tags],
      ['CreateQueue', { visibilityTimeout: '30' }, 'queueName', ''],
    ]);
    return cmqCase(fx, 'malformed', 'missing action parameter', { key: A(fx), action, nonce: nonce(r), params }, E.missing(missing), resource);
  });
  add('malformed', 'empty message body', 2, (r, fx) => {
    const batch = r.chance(0.5);
    return cmqCase(fx, 'malformed', 'empty message body', {
      key: A(fx), action: batch ? 'BatchSendMessage' : 'SendMessage', nonce: nonce(r),
      params: { queueName: fx.A.queues.main, msgBody: batch ? ['a', ''] : '' },
    }, E.emptyBody, fx.A.queues.main);
  });
  add('malformed', 'scalar given as an array', 2, (r, fx) => {
    const [action, params, name, resource] = r.pick([
      ['GetQueueAttributes', { 'queueName.1': fx.A.queues.main }, 'queueName', ''],
      ['SendMessage', { queueName: fx.A.queues.main, 'msgBody.1': 'x' }, 'msgBody', fx.A.queues.main],
      ['DeleteMessage', { queueName: fx.A.queues.main, 'receiptHandle.0': '1-1' }, 'receiptHandle', fx.A.queues.main],
      ['GetTopicAttributes', { 'topicName.0': fx.A.topics.tags }, 'topicName', ''],
    ]);
    return cmqCase(fx, 'malformed', 'scalar given as an array', { key: A(fx), action, nonce: nonce(r), params: pairsOf(params) }, E.notRepeatable(name), resource);
  });
  add('malformed', 'broken batch indexes', 6, (r, fx) => {
    const field = r.pick(['msgBody', 'receiptHandle']);
    const action = field === 'msgBody' ? 'BatchSendMessage' : 'BatchDeleteMessage';
    const v = () => (field === 'msgBody' ? `m${r.word(4)}` : `${r.range(1, 999)}-${r.range(1, 999999)}`);
    const [idx, expect] = r.pick([
      [['0', '2'], E.notConsecutive(field)],
      [['1', '3'], E.notConsecutive(field)],
      [['2'], E.notConsecutive(field)],
      [['1', '2', '4'], E.notConsecutive(field)],
      [['1', '01'], E.notConsecutive(field)],
      [['0', '1', '1000'], E.notConsecutive(field)],
      [['x'], E.keyFormat(`${field}.x`)],
      [['-1'], E.keyFormat(`${field}.-1`)],
      [['1.5'], E.keyFormat(`${field}.1.5`)],
      [['1234567'], E.keyFormat(`${field}.1234567`)],
      [[''], E.keyFormat(`${field}.`)],
      [[' 1'], E.keyFormat(`${field}. 1`)],
    ]);
    const params = [['queueName', fx.A.queues.main], ...idx.map((i) => [`${field}.${i}`, v()])];
    if (r.chance(0.2)) params.splice(1, 0, [field, v()]);
    // with `name` and `name.n` both given, a key of a bad form fails as it is read (10310), a gap
    // is not looked for: the mix itself is refused (10000)
    const scalarToo = params.some(([k]) => k === field);
    const final = scalarToo && expect[1].includes('not consequent') ? E.invalidParameters : expect;
    return cmqCase(fx, 'malformed', 'broken batch indexes', { key: A(fx), action, nonce: nonce(r), params }, final, fx.A.queues.main);
  });
  add('malformed', 'scalar and array both given', 1, (r, fx) =>
    cmqCase(fx, 'malformed', 'scalar and array both given', {
      key: A(fx), action: 'BatchSendMessage', nonce: nonce(r), params: [['queueName', fx.A.queues.main], ['msgBody', 'a'], ['msgBody.1', 'b'], ['msgBody.2', 'c']],
    }, E.invalidParameters, fx.A.queues.main));
  add('malformed', 'bad receipt handle', 6, (r, fx) => {
    // 0 is the receipt of a message never received: `<msgId>-0` is a forged handle
    const h = r.pick(['abc', '', '1-', '-1', '0-0', '1-0', `${fx.A.delayedMsgId}-0`, `${fx.A.delayedMsgId}-000`, "1' OR '1'='1", '99999999999999999999-1', '9223372036854775808-1', '1-2-3', ' 1-1', '1-1 ', '1_1', '%31-1', '１-１', 'null', 'undefined', `${r.range(1, 1e9)}-${r.range(1, 1e15)}`]);
    const q = r.pick([fx.A.queues.main, fx.A.queues.delay]);
    return cmqCase(fx, 'malformed', 'bad receipt handle', { key: A(fx), action: 'DeleteMessage', nonce: nonce(r), params: { queueName: q, receiptHandle: h } }, E.handleInvalid, q);
  });
  add('malformed', 'batch of bad receipt handles', 3, (r, fx) => {
    const n = r.range(1, 16);
    const hs = Array.from({ length: n }, () => r.pick(['x', '0-0', `${fx.A.delayedMsgId}-0`, `${r.range(1, 1e6)}-${r.range(1, 1e12)}`, "1' OR '1'='1", '']));
    return cmqCase(fx, 'malformed', 'batch of bad receipt handles', {
      key: A(fx), action: 'BatchDeleteMessage', nonce: nonce(r), params: { queueName: fx.A.queues.delay, receiptHandle: hs },
    }, E.batchDeleteFailed, fx.A.queues.delay);
  });
  add('malformed', 'bad dead-letter policy', 3, (r, fx) => {
    const fresh = `fresh-${r.word(10)}`;
    const [policy, expect] = r.pick([
      ['target', E.dlNotJson], ['', E.dlNotJson], ['[]', E.dlNotJson], ['null', E.dlNotJson], ['"x"', E.dlNotJson], ['{"deadLetterQueue":', E.dlNotJson],
      ['{"policy":0,"maxReceiveCount":3}', E.dlQueueMember], ['{"deadLetterQueue":5,"policy":0}', E.dlQueueMember],
      [`{"deadLetterQueue":"${fx.A.queues.main}"}`, E.dlPolicyMember], [`{"deadLetterQueue":"${fx.A.queues.main}","policy":2}`, E.dlPolicyMember],
      [`{"deadLetterQueue":"${fx.A.queues.main}","policy":0,"maxReceiveCount":0}`, E.dlParams], [`{"deadLetterQueue":"${fx.A.queues.main}","policy":0,"maxReceiveCount":"abc"}`, E.dlParams],
      [`{"deadLetterQueue":"${fx.A.queues.main}","policy":1,"maxTimeToLive":10}`, E.dlParams],
      ['{"deadLetterQueue":"../x","policy":0,"maxReceiveCount":3}', E.dlMissing], ['{"deadLetterQueue":"q\\u0000","policy":0,"maxReceiveCount":3}', E.dlMissing],
      [`{"deadLetterQueue":"nowhere-${r.word(8)}","policy":0,"maxReceiveCount":3}`, E.dlMissing],
      [`${'['.repeat(5000)}${']'.repeat(5000)}`, E.dlNotJson],
    ]);
    return cmqCase(fx, 'malformed', 'bad dead-letter policy', {
      key: A(fx), action: 'CreateQueue', nonce: nonce(r), params: { queueName: fresh, deadLetterPolicy: policy },
    }, expect, fresh);
  });
  add('malformed', 'bad subscription settings', 4, (r, fx) => {
    const sub = `fresh-${r.word(8)}`;
    const base = { topicName: fx.A.topics.tags, subscriptionName: sub };
    const [params, expect] = r.pick([
      [{ ...base, protocol: r.pick(['smtp', 'https', '', 'QUEUEX', 'sqs']), endpoint: 'x' }, E.undefinedProtocol],
      [{ ...base, protocol: 'http', endpoint: 'http://127.0.0.1:9/x', notifyStrategy: r.pick(['X', '', 'RETRY', 'backoff retry']) }, E.notifyStrategy],
      [{ ...base, protocol: 'http', endpoint: 'http://127.0.0.1:9/x', notifyContentFormat: r.pick(['XML', '', 'TEXT']) }, E.contentFormat],
      [{ ...base, protocol: 'queue', endpoint: fx.A.queues.main, notifyContentFormat: 'JSON' }, E.queueNeedsSimplified],
      [{ ...base, protocol: 'http', endpoint: r.pick(['ftp://x/', 'x', 'javascript:alert(1)', 'file:///etc/passwd', 'http://', 'gopher://127.0.0.1:6379/_FLUSHALL', 'http://[::1', 'http://a\u0000b/', 'http://x/\u0000', 'http://x/\u0007']) }, E.endpointFormat],
      [{ ...base, protocol: 'http', endpoint: r.pick(['http://a b/', 'http://x/ y', 'http://x/\ty', 'http://x/\ny']) }, E.endpointBlank],
      [{ ...base, protocol: 'http', endpoint: r.pick(['http://user:pw@example.com/', 'http://example.com/#frag', 'http://169.254.169.254/latest/meta-data/', 'http://2852039166/', 'http://0xa9fea9fe/', 'http://169.254.169.254.nip.io/', 'http://[::ffff:169.254.169.254]/', 'http://[::ffff:a9fe:a9fe]/', 'http://[0:0:0:0:0:ffff:a9fe:a9fe]/', 'http://[::169.254.169.254]/', 'http://[64:ff9b::169.254.169.254]/', 'http://[fd00:ec2::254]/']) }, E.illegalEndpoint],
      [{ ...base, protocol: 'queue', endpoint: r.pick(['1q', '', 'q x', '../q']) }, E.endpointFormat],
    ]);
    return cmqCase(fx, 'malformed', 'bad subscription settings', { key: A(fx), action: 'Subscribe', nonce: nonce(r), params }, expect, fx.A.topics.tags);
  });
  add('malformed', 'publish without a routing key', 1, (r, fx) =>
    cmqCase(fx, 'malformed', 'publish without a routing key', {
      key: A(fx), action: 'PublishMessage', nonce: nonce(r), params: { topicName: fx.A.topics.route, msgBody: 'x', routingKey: r.pick([undefined, '']) },
    }, E.lackRoutingKey, fx.A.topics.route));
  add('malformed', 'control characters in a search word', 2, (r, fx) => {
    const word = r.pick(['\u0000', 'a\u0000b', '\u0001', 'x\u001f', '\u007f']);
    const [action, params, resource] = r.pick([
      ['ListQueue', { searchWord: word }, ''],
      ['ListTopic', { searchWord: word }, ''],
      ['ListSubscriptionByTopic', { topicName: fx.A.topics.tags, searchWord: word }, fx.A.topics.tags],
      ['ListDeadLetterSourceQueues', { deadLetterQueueName: fx.A.queues.main, searchWord: word }, fx.A.queues.main],
    ]);
    return cmqCase(fx, 'malformed', 'control characters in a search word', { key: A(fx), action, nonce: nonce(r), params }, E.outOfRange('searchWord'), resource);
  });
  add('malformed', 'GET with a fault', 3, (r, fx) => {
    const [action, params, expect, resource] = r.pick([
      ['SendMessage', { queueName: fx.A.queues.main }, E.missing('msgBody'), fx.A.queues.main],
      ['CreateQueue', { queueName: r.pick(BAD_NAMES) }, E.queueNameFormat, ''],
      ['DeleteMessage', { queueName: fx.A.queues.delay, receiptHandle: `${fx.A.delayedMsgId}-0` }, E.handleInvalid, fx.A.queues.delay],
      ['BatchReceiveMessage', { queueName: fx.A.queues.main, numOfMsg: '99' }, E.outOfRange('numOfMsg'), fx.A.queues.main],
    ]);
    return cmqCase(fx, 'malformed', 'GET with a fault', { key: A(fx), action, nonce: nonce(r), method: 'GET', params }, expect, resource);
  });
  add('malformed', 'action name in odd case, with a fault', 1, (r, fx) => {
    const action = r.pick(['sendmessage', 'SENDMESSAGE', 'sEnDmEsSaGe']);
    return cmqCase(fx, 'malformed', 'action name in odd case, with a fault', { key: A(fx), action, nonce: nonce(r), params: { queueName: fx.A.queues.main, msgBody: '' } }, E.emptyBody, fx.A.queues.main);
  });

  // ------------------------------------------------------------ oversized: CMQ
  add('oversized', 'body over the request limit (Content-Length)', 0.5, (r, fx) => {
    const size = fx.limits.maxRequestBytes + r.range(1, 65536);
    return cmqCase(fx, 'oversized', 'body over the request limit (Content-Length)', {
      key: A(fx), action: 'SendMessage', nonce: nonce(r), fresh: true,
      bodyOverride: () => Buffer.concat([Buffer.from(`Action=SendMessage&queueName=${fx.A.queues.main}&msgBody=`), Buffer.alloc(size, 'x')]),
    }, E.cannotParse, null);
  });
  add('oversized', 'body over the request limit (chunked)', 0.25, (r, fx) => {
    const size = fx.limits.maxRequestBytes + r.range(1, 65536);
    return cmqCase(fx, 'oversized', 'body over the request limit (chunked)', {
      key: A(fx), action: 'SendMessage', nonce: nonce(r), fresh: true, chunked: true,
      bodyOverride: () => Buffer.concat([Buffer.from(`Action=SendMessage&queueName=${fx.A.queues.main}&msgBody=`), Buffer.alloc(size, 'y')]),
    }, E.cannotParse, null);
  });
  add('oversized', "message over the queue's maxMsgSize", 5, (r, fx) => {
    const cjk = r.chance(0.3);
    const len = r.range(fx.limits.smallQueueMsgSize + 1, fx.limits.smallQueueMsgSize * 8);
    const body = cjk ? '你'.repeat(Math.ceil(len / 3)) : 'z'.repeat(len);
    const batch = r.chance(0.3);
    return cmqCase(fx, 'oversized', "message over the queue's maxMsgSize", {
      key: A(fx), action: batch ? 'BatchSendMessage' : 'SendMessage', nonce: nonce(r), params: { queueName: fx.A.queues.small, msgBody: batch ? ['ok', body] : body },
    }, E.tooBig, fx.A.queues.small);
  });
  add('oversized', 'message over the protocol maximum', 0.3, (r, fx) =>
    cmqCase(fx, 'oversized', 'message over the protocol maximum', {
      key: A(fx), action: 'SendMessage', nonce: nonce(r), params: { queueName: fx.A.queues.big, msgBody: 'w'.repeat(1048576 + r.range(1, 4096)) },
    }, E.tooBig, fx.A.queues.big));
  add('oversized', 'publish over the topic maxMsgSize', 2, (r, fx) =>
    cmqCase(fx, 'oversized', 'publish over the topic maxMsgSize', {
      key: A(fx), action: 'PublishMessage', nonce: nonce(r), params: { topicName: fx.A.topics.tags, msgBody: 'p'.repeat(fx.limits.tagsTopicMsgSize + r.range(1, 5000)) },
    }, E.tooBig, fx.A.topics.tags));
  add('oversized', 'batch over 1 MiB in total', 0.3, (r, fx) =>
    cmqCase(fx, 'oversized', 'batch over 1 MiB in total', {
      key: A(fx), action: 'BatchSendMessage', nonce: nonce(r), params: { queueName: fx.A.queues.big, msgBody: ['a'.repeat(600000), 'b'.repeat(600000)] },
    }, E.batchTooBig, fx.A.queues.big));
  add('oversized', 'too many batch entries', 4, (r, fx) => {
    const n = r.range(17, 200);
    const [action, field] = r.pick([['BatchSendMessage', 'msgBody'], ['BatchDeleteMessage', 'receiptHandle'], ['BatchPublishMessage', 'msgBody']]);
    const params = action === 'BatchPublishMessage' ? { topicName: fx.A.topics.tags } : { queueName: fx.A.queues.main };
    params[field] = Array.from({ length: n }, (_, i) => (field === 'msgBody' ? `m${i}` : `${i + 1}-${i + 1}`));
    return cmqCase(fx, 'oversized', 'too many batch entries', { key: A(fx), action, nonce: nonce(r), params }, E.batchSize(field), params.queueName ?? params.topicName);
  });
  add('oversized', 'over-long name', 5, (r, fx) => {
    const name = 'q' + r.word(r.range(64, 5000));
    const kind = r.pick(['queue', 'topic', 'subscription']);
    if (kind === 'queue') return cmqCase(fx, 'oversized', 'over-long name', { key: A(fx), action: r.pick(['CreateQueue', 'SendMessage', 'GetQueueAttributes']), nonce: nonce(r), params: { queueName: name, msgBody: 'x' } }, E.queueNameFormat, '');
    if (kind === 'topic') return cmqCase(fx, 'oversized', 'over-long name', { key: A(fx), action: r.pick(['CreateTopic', 'PublishMessage']), nonce: nonce(r), params: { topicName: name, msgBody: 'x' } }, E.topicNameFormat, '');
    return cmqCase(fx, 'oversized', 'over-long name', { key: A(fx), action: 'Subscribe', nonce: nonce(r), params: { topicName: fx.A.topics.tags, subscriptionName: name, protocol: 'queue', endpoint: fx.A.queues.main } }, E.subNameFormat, fx.A.topics.tags);
  });
  add('oversized', 'over-long or too many tags and keys', 6, (r, fx) => {
    const longTag = 't'.repeat(r.range(17, 300));
    // 16 dots or more, within 64 bytes (a longer key is refused for its length first)
    const dots = Array.from({ length: r.range(17, 32) }, () => 'a').join('.');
    const longKey = 'k'.repeat(r.range(65, 500));
    const sub = `fresh-${r.word(8)}`;
    const [action, params, expect, resource] = r.pick([
      ['PublishMessage', { topicName: fx.A.topics.tags, msgBody: 'x', msgTag: ['ok', longTag] }, E.outOfRange('msgTag'), fx.A.topics.tags],
      ['PublishMessage', { topicName: fx.A.topics.tags, msgBody: 'x', msgTag: ['a', 'b', 'c', 'd', 'e', 'f'] }, E.tooManyMsgTags, fx.A.topics.tags],
      ['PublishMessage', { topicName: fx.A.topics.tags, msgBody: 'x', msgTag: Array.from({ length: 65 }, (_, i) => `t${i}`) }, E.batchSize('msgTag'), fx.A.topics.tags],
      ['PublishMessage', { topicName: fx.A.topics.route, msgBody: 'x', routingKey: longKey }, E.outOfRange('routingKey'), fx.A.topics.route],
      ['PublishMessage', { topicName: fx.A.topics.route, msgBody: 'x', routingKey: dots }, E.tooManyDelimiters, fx.A.topics.route],
      ['Subscribe', { topicName: fx.A.topics.tags, subscriptionName: sub, protocol: 'queue', endpoint: fx.A.queues.main, filterTag: ['a', 'b', 'c', 'd', 'e', 'f'] }, E.tooManyFilterTags, fx.A.topics.tags],
      ['Subscribe', { topicName: fx.A.topics.tags, subscriptionName: sub, protocol: 'queue', endpoint: fx.A.queues.main, filterTag: [longTag] }, E.outOfRange('filterTag'), fx.A.topics.tags],
      ['Subscribe', { topicName: fx.A.topics.route, subscriptionName: sub, protocol: 'queue', endpoint: fx.A.queues.main, bindingKey: [longKey] }, E.outOfRange('bindingKey'), fx.A.topics.route],
      ['Subscribe', { topicName: fx.A.topics.route, subscriptionName: sub, protocol: 'queue', endpoint: fx.A.queues.main, bindingKey: [dots] }, E.tooManyDelimiters, fx.A.topics.route],
      ['Subscribe', { topicName: fx.A.topics.route, subscriptionName: sub, protocol: 'queue', endpoint: fx.A.queues.main, bindingKey: ['a', 'b', 'c', 'd', 'e', 'f'] }, E.tooManyBindingKeys, fx.A.topics.route],
      ['Subscribe', { topicName: fx.A.topics.tags, subscriptionName: sub, protocol: 'http', endpoint: `http://example.com/${'e'.repeat(r.range(490, 5000))}` }, E.outOfRange('endpoint'), fx.A.topics.tags],
      ['ListQueue', { searchWord: 's'.repeat(r.range(65, 10000)) }, E.outOfRange('searchWord'), ''],
      ['ListTopic', { searchWord: 's'.repeat(r.range(65, 10000)) }, E.outOfRange('searchWord'), ''],
    ]);
    return cmqCase(fx, 'oversized', 'over-long or too many tags and keys', { key: A(fx), action, nonce: nonce(r), params }, expect, resource);
  });
  add('oversized', 'huge header', 0.6, (r, fx) => {
    const c = cmqCase(fx, 'oversized', 'huge header', {
      key: A(fx), action: 'SendMessage', nonce: nonce(r), fresh: true, params: { queueName: fx.A.queues.main, msgBody: 'x' },
      headers: { 'x-padding': 'h'.repeat(r.range(17 * 1024, 80 * 1024)) },
    }, E.cannotParse, null);
    return c;
  });
  add('oversized', 'huge GET URL', 0.6, (r, fx) =>
    cmqCase(fx, 'oversized', 'huge GET URL', {
      key: A(fx), action: 'SendMessage', nonce: nonce(r), method: 'GET', fresh: true, params: { queueName: fx.A.queues.main, msgBody: 'u'.repeat(r.range(17 * 1024, 64 * 1024)) },
    }, E.cannotParse, null));
  add('oversized', 'over-long SecretId', 1, (r, fx) =>
    cmqCase(fx, 'oversized', 'over-long SecretId', {
      key: { secretId: 'AKID' + r.word(r.range(129, 200000)), secretKey: 'whatever' }, action: 'ListQueue', nonce: nonce(r),
    }, E.unknownSecretId, null));
  add('oversized', 'over-long Signature and Nonce', 1, (r, fx) => {
    // a long Nonce is fine for the protocol (opaque): what fails is the Signature, repeated or padded
    const repeated = r.chance(0.5);
    const times = r.range(2, 5000);
    const padded = 'A'.repeat(r.range(100, 50000));
    return cmqCase(fx, 'oversized', 'over-long Signature and Nonce', {
      key: A(fx), action: 'ListQueue', nonce: '9'.repeat(r.range(20, 100000)),
      tamper: (p) => p.map(([k, v]) => (k === 'Signature' ? [k, repeated ? v.repeat(times) : padded] : [k, v])),
    }, E.authFailed, null);
  });

  // ------------------------------------------------------------ mis-signed: CMQ
  add('mis-signed', 'wrong SecretKey', 4, (r, fx) =>
    cmqCase(fx, 'mis-signed', 'wrong SecretKey', {
      key: A(fx), signKey: r.pick([r.word(32), fx.B.key.secretKey, fx.A.key.secretKey.toUpperCase(), fx.A.key.secretKey + ' ', '']), action: r.pick(['SendMessage', 'ListQueue', 'DeleteQueue']), nonce: nonce(r),
      params: { queueName: fx.A.queues.main, msgBody: 'x' },
    }, E.authFailed, null));
  add('mis-signed', "another tenant's SecretId", 3, (r, fx) =>
    cmqCase(fx, 'mis-signed', "another tenant's SecretId", {
      key: { secretId: fx.B.key.secretId, secretKey: fx.A.key.secretKey }, action: r.pick(['ListQueue', 'GetQueueAttributes', 'DeleteQueue', 'SendMessage']), nonce: nonce(r),
      params: { queueName: fx.B.queues.held, msgBody: 'x' },
    }, E.authFailed, null));
  add('mis-signed', 'unknown SecretId', 4, (r, fx) => {
    const id = r.pick([`AKID${r.word(32)}`, fx.A.deletedKey.secretId, `${fx.A.key.secretId}x`, fx.A.key.secretId.toLowerCase(), 'AKID', '', ...SQLI.map((s) => `AKID${s}`), 'AKID\u0000x', '\u0000', 'AKID%00', ' ', `AKID${r.word(8)} `]);
    return cmqCase(fx, 'mis-signed', 'unknown SecretId', { key: { secretId: id, secretKey: r.word(32) }, action: 'ListQueue', nonce: nonce(r) }, E.unknownSecretId, null);
  });
  add('mis-signed', 'disabled key', 3, (r, fx) =>
    cmqCase(fx, 'mis-signed', 'disabled key', {
      key: fx.A.disabledKey, action: r.pick(['ListQueue', 'SendMessage', 'CreateQueue']), nonce: nonce(r), params: { queueName: fx.A.queues.main, msgBody: 'x' },
      timestampOffset: r.pick([0, -100000]),
    }, E.keyDisabled, null));
  add('mis-signed', 'tampered after signing', 6, (r, fx) => {
    const how = r.pick(['value', 'added', 'removed', 'renamed', 'queue swapped', 'Timestamp moved', 'Nonce changed', 'Action swapped']);
    const tamper = {
      value: (p) => p.map(([k, v]) => (k === 'msgBody' ? [k, v + '!'] : [k, v])),
      added: (p) => [...p, ['delaySeconds', '0']],
      removed: (p) => p.filter(([k]) => k !== 'RequestClient'),
      renamed: (p) => p.map(([k, v]) => (k === 'msgBody' ? ['msgbody', v] : [k, v])),
      'queue swapped': (p) => p.map(([k, v]) => (k === 'queueName' ? [k, fx.B.queues.held] : [k, v])),
      'Timestamp moved': (p) => p.map(([k, v]) => (k === 'Timestamp' ? [k, String(Number(v) - 1)] : [k, v])),
      'Nonce changed': (p) => p.map(([k, v]) => (k === 'Nonce' ? [k, v + '0'] : [k, v])),
      'Action swapped': (p) => p.map(([k, v]) => (k === 'Action' ? [k, 'DeleteQueue'] : [k, v])),
    }[how];
    const c = cmqCase(fx, 'mis-signed', 'tampered after signing', { key: A(fx), action: 'SendMessage', nonce: nonce(r), params: { queueName: fx.A.queues.main, msgBody: `t-${r.word(10)}` }, tamper }, E.authFailed, null);
    c.describe += ` (${how})`;
    return c;
  });
  add('mis-signed', 'wrong SignatureMethod', 3, (r, fx) => {
    const [signatureMethod, alg] = r.pick([['HmacSHA256', 'sha1'], ['HmacSHA1', 'sha256'], [undefined, 'sha256'], ['hmacsha256', 'sha256'], ['HmacSHA512', 'sha512'], ['HmacMD5', 'md5'], ['HMACSHA256', 'sha256']]);
    const c = cmqCase(fx, 'mis-signed', 'wrong SignatureMethod', { key: A(fx), action: 'ListQueue', nonce: nonce(r), signatureMethod, alg }, E.authFailed, null);
    c.describe += ` (declared ${signatureMethod}, signed ${alg})`;
    return c;
  });
  add('mis-signed', 'wrong host, path or method signed', 5, (r, fx) => {
    const [what, o] = r.pick([
      ['host', { signHost: r.pick(['cmq-queue-gz.api.tencentyun.com', '127.0.0.1', `127.0.0.1:${fx.cmq.port + 1}`, 'localhost:' + fx.cmq.port, `127.0.0.1:${fx.cmq.port}/`]) }],
      ['Host header', { hostHeader: r.pick(['evil.example.com', `localhost:${fx.cmq.port}`, 'cmq-queue-gz.api.qcloud.com', `127.0.0.1:${fx.cmq.port}.evil.com`]) }],
      ['path', { signPath: r.pick(['/', '/v2/index.php/', '/v2/index', '/V2/INDEX.PHP']) }],
      ['path sent', { path: '/', signPath: '/v2/index.php' }],
      ['method', { signMethod: 'GET' }],
      ['method sent', { method: 'GET', signMethod: 'POST' }],
    ]);
    const c = cmqCase(fx, 'mis-signed', 'wrong host, path or method signed', { key: A(fx), action: 'SendMessage', nonce: nonce(r), params: { queueName: fx.A.queues.main, msgBody: 'x' }, ...o }, E.authFailed, null);
    c.describe += ` (${what})`;
    return c;
  });
  add('mis-signed', 'Timestamp outside the window', 5, (r, fx) => {
    const w = fx.limits.signatureWindowSeconds;
    const offset = r.pick([-1, 1]) * r.pick([w + 60, w + r.range(61, 3600), r.range(86400, 10 * 365 * 86400)]);
    const c = cmqCase(fx, 'mis-signed', 'Timestamp outside the window', {
      key: A(fx), action: r.pick(['ListQueue', 'SendMessage']), nonce: nonce(r), timestampOffset: offset, params: { queueName: fx.A.queues.main, msgBody: 'x' },
    }, E.authFailed, null);
    c.describe += ` (${offset > 0 ? '+' : ''}${offset} s)`;
    return c;
  });
  add('mis-signed', 'absurd Timestamp', 1, (r, fx) =>
    cmqCase(fx, 'mis-signed', 'absurd Timestamp', { key: A(fx), action: 'ListQueue', nonce: nonce(r), timestamp: r.pick(['0', '000000000000', '999999999999', '1']) }, E.authFailed, null));
  add('mis-signed', 'garbage Signature', 4, (r, fx) => {
    const sig = r.pick(['', 'abc', '====', 'x'.repeat(28), 'A'.repeat(27) + '=', 'A'.repeat(43) + '=', '%%%', 'null', Buffer.alloc(20).toString('base64'), Buffer.alloc(32, 1).toString('base64'), r.hex(40)]);
    return cmqCase(fx, 'mis-signed', 'garbage Signature', {
      key: A(fx), action: 'ListQueue', nonce: nonce(r), tamper: (p) => [...p.filter(([k]) => k !== 'Signature'), ['Signature', sig]],
    }, E.authFailed, null);
  });
  add('mis-signed', "another request's Signature", 2, (r, fx) => {
    const other = nonce(r);
    return cmqCase(fx, 'mis-signed', "another request's Signature", {
      key: A(fx), action: 'DeleteQueue', nonce: nonce(r), params: { queueName: fx.A.queues.main },
      tamper: (p) => {
        const donor = cmqRequest(fx, { key: A(fx), action: 'ListQueue', nonce: other })().plain.find(([k]) => k === 'Signature')[1];
        return [...p.filter(([k]) => k !== 'Signature'), ['Signature', donor]];
      },
    }, E.authFailed, null);
  });
  add('mis-signed', '@-value added to a GET after signing', 1, (r, fx) => {
    // the @ rule (spec §4.1) is for POST only: a GET's @-value is signed like any other
    const o = { key: A(fx), action: 'SendMessage', nonce: nonce(r), method: 'GET', params: { queueName: fx.A.queues.main } };
    const extra = `&msgBody=${encodeURIComponent('@x' + r.word(6))}`;
    const c = cmqCase(fx, 'mis-signed', '@-value added to a GET after signing', o, E.authFailed, null);
    c.make = [
      () => {
        const req = cmqRequest(fx, o)();
        req.path += extra;
        return req;
      },
    ];
    return c;
  });

  // ------------------------------------------------------------ replayed: CMQ
  const replay = (name, weight, parallel, build) =>
    add('replayed', name, weight, (r, fx) => {
      const { o, first, meter, stores } = build(r, fx);
      const once = cmqRequest(fx, o);
      let req;
      const c = {
        cat: 'replayed',
        target: 'cmq',
        tpl: name,
        mode: parallel ? 'par' : 'seq',
        make: [() => (req = once()), () => req],
        expect: [{ http: 200, code: first[0], message: first[1] }, { http: 200, code: E.authFailed[0], message: E.authFailed[1] }],
        meters: [meter, null],
        stores,
        describe: `${o.method || 'POST'} ${o.action} sent twice${parallel ? ' at once' : ''}`,
      };
      return c;
    });
  replay('replayed send', 3, false, (r, fx) => {
    const body = `replay-${r.word(16)}`;
    return {
      o: { key: A(fx), action: 'SendMessage', nonce: nonce(r), params: { queueName: fx.A.queues.replay, msgBody: body } },
      first: E.ok,
      meter: { action: 'SendMessage', outcome: 'ok', resource: fx.A.queues.replay, messages: 1, bytesIn: body.length, sizeBands: sizeWeight(body.length), per64k: 1 },
      stores: [body],
    };
  });
  replay('replayed send, both at once', 2, true, (r, fx) => {
    const body = `replay-par-${r.word(16)}`;
    return {
      o: { key: A(fx), action: 'SendMessage', nonce: nonce(r), params: { queueName: fx.A.queues.replay, msgBody: body } },
      first: E.ok,
      meter: { action: 'SendMessage', outcome: 'ok', resource: fx.A.queues.replay, messages: 1, bytesIn: body.length, sizeBands: sizeWeight(body.length), per64k: 1 },
      stores: [body],
    };
  });
  add('replayed', 'replayed with another spelling of its Signature', 3, (r, fx) => {
    // the same digest written otherwise (Base64 decoders skip what is not Base64 and stop at `=`):
    // still the request already seen, never a new one
    const body = `respell-${r.word(16)}`;
    const o = { key: A(fx), action: 'SendMessage', nonce: nonce(r), params: { queueName: fx.A.queues.replay, msgBody: body } };
    const how = r.pick(['garbage after the padding', 'padding dropped', 'a character inserted', 'a leading blank', 'twice']);
    const garbage = r.word(4);
    const respell = (sig) =>
      ({
        'garbage after the padding': `${sig}x${garbage}`,
        'padding dropped': sig.replace(/=+$/, ''),
        'a character inserted': `${sig.slice(0, 7)}*${sig.slice(7)}`,
        'a leading blank': ` ${sig}`,
        twice: sig + sig,
      })[how];
    let first;
    return {
      cat: 'replayed',
      target: 'cmq',
      tpl: 'replayed with another spelling of its Signature',
      mode: 'seq',
      make: [
        () => (first = cmqRequest(fx, o)()),
        () => {
          const pairs = first.plain.map(([k, v]) => (k === 'Signature' ? [k, respell(v)] : [k, v]));
          return { ...first, body: formEncode(pairs), plain: pairs };
        },
      ],
      expect: [{ http: 200, code: 0, message: '' }, { http: 200, code: E.authFailed[0], message: E.authFailed[1] }],
      meters: [{ action: 'SendMessage', outcome: 'ok', resource: fx.A.queues.replay, messages: 1, bytesIn: body.length, sizeBands: sizeWeight(body.length), per64k: 1 }, null],
      stores: [body],
      describe: `POST SendMessage sent again with its Signature spelled otherwise (${how})`,
    };
  });
  replay('replayed read', 2, false, (r, fx) => ({
    o: { key: A(fx), action: 'GetQueueAttributes', nonce: nonce(r), params: { queueName: fx.A.queues.main } },
    first: E.ok,
    meter: { action: 'GetQueueAttributes', outcome: 'ok', resource: fx.A.queues.main },
  }));
  replay('replayed read via GET', 1, false, (r, fx) => ({
    o: { key: A(fx), action: 'GetTopicAttributes', nonce: nonce(r), method: 'GET', params: { topicName: fx.A.topics.tags } },
    first: E.ok,
    meter: { action: 'GetTopicAttributes', outcome: 'ok', resource: fx.A.topics.tags },
  }));
  replay('replayed failing delete', 2, false, (r, fx) => ({
    o: { key: A(fx), action: 'DeleteMessage', nonce: nonce(r), params: { queueName: fx.A.queues.delay, receiptHandle: `${fx.A.delayedMsgId}-${r.range(1, 1e9)}` } },
    first: E.handleInvalid,
    meter: { action: 'DeleteMessage', outcome: 'client_error', resource: fx.A.queues.delay },
  }));
  replay("replayed request for another tenant's queue", 2, false, (r, fx) => ({
    o: { key: A(fx), action: 'SendMessage', nonce: nonce(r), params: { queueName: fx.B.queues.held, msgBody: `r-${r.word(8)}` } },
    first: E.queueNotExist,
    meter: { action: 'SendMessage', outcome: 'client_error', resource: fx.B.queues.held },
  }));
  replay('replayed failing read, both at once', 1, true, (r, fx) => ({
    o: { key: A(fx), action: 'BatchReceiveMessage', nonce: nonce(r), params: { queueName: fx.A.queues.main, numOfMsg: '0' } },
    first: E.outOfRange('numOfMsg'),
    meter: { action: 'BatchReceiveMessage', outcome: 'client_error', resource: fx.A.queues.main },
  }));

  // ------------------------------------------------------------ cross-tenant: CMQ
  add('cross-tenant', "queue action on another tenant's queue", 12, (r, fx) => {
    const q = r.chance(0.2) ? r.pick([fx.B.queues.held, fx.B.queues.sub]).toUpperCase() : r.pick([fx.B.queues.held, fx.B.queues.sub]);
    const [action, params] = r.pick([
      ['GetQueueAttributes', {}], ['SetQueueAttributes', { visibilityTimeout: '60' }], ['DeleteQueue', {}], ['SendMessage', { msgBody: `x-${r.word(6)}` }],
      ['BatchSendMessage', { msgBody: ['a', 'b'] }], ['ReceiveMessage', { pollingWaitSeconds: '0' }], ['ReceiveMessage', {}], ['BatchReceiveMessage', { numOfMsg: '16' }],
      ['DeleteMessage', { receiptHandle: r.pick(fx.B.handles) }], ['BatchDeleteMessage', { receiptHandle: fx.B.handles.slice(0, r.range(1, fx.B.handles.length)) }],
      // a time from the fixtures, not the clock: one seed, one campaign
      ['RewindQueue', { startConsumeTime: String(fx.startedAt - 60) }], ['UnbindDeadLetterQueue', {}], ['QueryQueueRoute', {}],
    ]);
    const method = r.chance(0.15) ? 'GET' : 'POST';
    return cmqCase(fx, 'cross-tenant', "queue action on another tenant's queue", { key: A(fx), action, nonce: nonce(r), method, params: { queueName: q, ...params } }, E.queueNotExist, q);
  });
  add('cross-tenant', "another tenant's queue as dead-letter target or source", 2, (r, fx) => {
    const [action, params, expect, resource] = r.pick([
      ['ListDeadLetterSourceQueues', { deadLetterQueueName: fx.B.queues.held }, E.queueNotExist, fx.B.queues.held],
      ['CreateQueue', { queueName: `fresh-${r.word(10)}`, deadLetterPolicy: JSON.stringify({ deadLetterQueue: fx.B.queues.held, policy: 0, maxReceiveCount: 3 }) }, E.dlMissing, null],
      ['SetQueueAttributes', { queueName: fx.A.queues.main, deadLetterPolicy: JSON.stringify({ deadLetterQueue: fx.B.queues.sub, policy: 0, maxReceiveCount: 3 }) }, E.dlMissing, fx.A.queues.main],
    ]);
    return cmqCase(fx, 'cross-tenant', "another tenant's queue as dead-letter target or source", { key: A(fx), action, nonce: nonce(r), params }, expect, resource ?? params.queueName);
  });
  add('cross-tenant', "another tenant's receipt handles on one's own queue", 5, (r, fx) => {
    if (r.chance(0.5)) {
      const q = r.pick([fx.A.queues.main, fx.A.queues.delay]);
      return cmqCase(fx, 'cross-tenant', "another tenant's receipt handles on one's own queue", {
        key: A(fx), action: 'DeleteMessage', nonce: nonce(r), params: { queueName: q, receiptHandle: r.pick([...fx.B.handles, `${fx.B.delayedMsgId}-0`]) },
      }, E.handleInvalid, q);
    }
    const hs = fx.B.handles.slice(0, r.range(1, fx.B.handles.length));
    return cmqCase(fx, 'cross-tenant', "another tenant's receipt handles on one's own queue", {
      key: A(fx), action: 'BatchDeleteMessage', nonce: nonce(r), params: { queueName: fx.A.queues.main, receiptHandle: hs },
    }, E.batchDeleteFailed, fx.A.queues.main);
  });
  add('cross-tenant', "topic action on another tenant's topic", 8, (r, fx) => {
    const t = r.chance(0.2) ? fx.B.topic.toUpperCase() : fx.B.topic;
    const [action, params] = r.pick([
      ['GetTopicAttributes', {}], ['SetTopicAttributes', { maxMsgSize: '2048' }], ['DeleteTopic', {}], ['PublishMessage', { msgBody: `p-${r.word(6)}` }],
      ['BatchPublishMessage', { msgBody: ['a', 'b'] }], ['Subscribe', { subscriptionName: `s${r.word(8)}`, protocol: 'http', endpoint: 'http://127.0.0.1:9/hook' }],
      ['Unsubscribe', { subscriptionName: fx.B.sub }], ['SetSubscriptionAttributes', { subscriptionName: fx.B.sub, notifyStrategy: 'BACKOFF_RETRY' }],
      ['GetSubscriptionAttributes', { subscriptionName: fx.B.sub }], ['ListSubscriptionByTopic', {}], ['ClearSubscriptionFilterTags', { subscriptionName: fx.B.sub }], ['QueryTopicRoute', {}],
    ]);
    return cmqCase(fx, 'cross-tenant', "topic action on another tenant's topic", { key: A(fx), action, nonce: nonce(r), params: { topicName: t, ...params } }, E.topicNotExist, t);
  });
  add('cross-tenant', "another tenant's subscription on one's own topic", 3, (r, fx) => {
    const action = r.pick(['GetSubscriptionAttributes', 'Unsubscribe', 'SetSubscriptionAttributes', 'ClearSubscriptionFilterTags']);
    return cmqCase(fx, 'cross-tenant', "another tenant's subscription on one's own topic", {
      key: A(fx), action, nonce: nonce(r), params: { topicName: fx.A.topics.tags, subscriptionName: fx.B.sub, notifyStrategy: action === 'SetSubscriptionAttributes' ? 'BACKOFF_RETRY' : undefined },
    }, E.subscriptionNotExist, fx.A.topics.tags);
  });
  add('cross-tenant', "subscribing another tenant's queue", 2, (r, fx) =>
    cmqCase(fx, 'cross-tenant', "subscribing another tenant's queue", {
      key: A(fx), action: 'Subscribe', nonce: nonce(r), params: { topicName: fx.A.topics.tags, subscriptionName: `fresh-${r.word(8)}`, protocol: 'queue', endpoint: r.pick([fx.B.queues.held, fx.B.queues.sub]) },
    }, E.queueNotExist, fx.A.topics.tags));

  // ------------------------------------------------------------ cross-tenant: console and internal API
  const accountRoutes = (id, fx) => [
    ['GET', `/v1/accounts/${id}`], ['GET', `/v1/accounts/${id}/keys`], ['POST', `/v1/accounts/${id}/keys`],
    ['POST', `/v1/accounts/${id}/keys/${fx.B.key.secretId}/disable`], ['POST', `/v1/accounts/${id}/keys/${fx.B.key.secretId}/enable`], ['DELETE', `/v1/accounts/${id}/keys/${fx.B.key.secretId}`],
    ['GET', `/v1/accounts/${id}/ledger`], ['GET', `/v1/accounts/${id}/balance`], ['GET', `/v1/accounts/${id}/plans`], ['PUT', `/v1/accounts/${id}/alert-threshold`, { amount: '1.00' }],
    ['GET', `/v1/accounts/${id}/notifications`], ['GET', `/v1/accounts/${id}/data-rights`], ['GET', `/v1/accounts/${id}/audit-records`], ['GET', `/v1/accounts/${id}/bills`],
    ['GET', `/v1/accounts/${id}/bills/2026-01`], ['GET', `/v1/accounts/${id}/usage?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z`],
    ['GET', `/v1/accounts/${id}/statements?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z`], ['GET', `/v1/sla/accounts/${id}/months/2026-01`], ['GET', `/v1/sla/accounts/${id}/months/2026-01/report.html`],
  ];
  add('cross-tenant', "console sign-in reading or changing another account", 8, (r, fx) => {
    const id = r.chance(0.85) ? fx.B.accountId : r.pick(['00000000-0000-4000-8000-000000000000', 'not-a-uuid', fx.B.accountId.toUpperCase(), `${fx.B.accountId}%00`, ...SQLI.map(encodeURIComponent)]);
    const [method, path, body] = r.pick(accountRoutes(id, fx));
    return apiCase(fx, 'cross-tenant', 'console sign-in reading or changing another account', { method, path, token: fx.A.console, body }, 404, 'no such account');
  });
  add('cross-tenant', "console sign-in downloading another account's CSV", 2, (r, fx) => {
    const file = r.pick(['ledger.csv', 'usage-hourly.csv', 'bills.csv', 'bill-lines.csv']);
    const range = file.startsWith('bill') ? 'from=2026-01&to=2026-02' : 'from=2026-01-01&to=2026-02-01';
    const acc = r.pick([`&accountId=${fx.B.accountId}`, '', `&accountId=${fx.A.accountId}&accountId=${fx.B.accountId}`, `&accountId=${fx.B.accountId}&accountId=${fx.A.accountId}`]);
    return apiCase(fx, 'cross-tenant', "console sign-in downloading another account's CSV", { method: 'GET', path: `/v1/exports/${file}?${range}${acc}`, token: fx.A.console }, 404, 'no such account');
  });
  add('cross-tenant', "console sign-in on another account's key under its own id", 2, (r, fx) => {
    const [method, suffix] = r.pick([['POST', '/disable'], ['POST', '/enable'], ['DELETE', '']]);
    return apiCase(fx, 'cross-tenant', "console sign-in on another account's key under its own id", {
      method, path: `/v1/accounts/${fx.A.accountId}/keys/${fx.B.key.secretId}${suffix}`, token: fx.A.console,
    }, 404, `key ${fx.B.key.secretId} does not exist`);
  });
  add('cross-tenant', "operator path ids of another account", 2, (r, fx) => {
    const [token, method, suffix] = r.pick([[fx.tokens.admin, 'DELETE', ''], [fx.tokens.ops, 'POST', '/disable'], [fx.tokens.ops, 'POST', '/enable']]);
    return apiCase(fx, 'cross-tenant', 'operator path ids of another account', {
      method, path: `/v1/accounts/${fx.A.accountId}/keys/${fx.B.key.secretId}${suffix}`, token, headers: { 'x-operator': 'bad-input-campaign' },
    }, 404, `key ${fx.B.key.secretId} does not exist`);
  });
  const operatorOnly = (fx, id) => [
    ['GET', '/v1/accounts'], ['POST', '/v1/accounts', { name: 'evil' }], ['GET', `/v1/accounts/${id}/webhook`], ['PUT', `/v1/accounts/${id}/webhook`, { url: 'http://127.0.0.1:9/x', secret: 'x'.repeat(20) }],
    ['DELETE', `/v1/accounts/${id}/webhook`], ['POST', `/v1/accounts/${id}/topups`, { amount: '1000.00' }], ['POST', `/v1/accounts/${id}/adjustments`, { amount: '1000.00', reason: 'gift' }],
    ['PUT', `/v1/accounts/${id}/plans/gz`, { plan: 'default' }], ['PUT', `/v1/accounts/${id}/queues/${fx.A.queues.main}/qps-limit`, { qpsLimit: 1000000 }], ['GET', '/v1/audit'], ['GET', '/v1/audit/verify'],
    ['POST', '/v1/audit/releases', { version: '1.0.0', description: 'x' }], ['GET', '/v1/plans'], ['POST', '/v1/usage-events', { events: [] }], ['POST', '/v1/bills/2020-01/close'],
    ['GET', '/v1/sla/months/2026-01'], ['POST', '/v1/sla/maintenance', {}], ['GET', '/v1/sla/policies'], ['POST', '/v1/exports', { kind: 'ledger', from: '2026-01-01', to: '2026-02-01' }],
    ['GET', '/v1/exports/00000000-0000-4000-8000-000000000000'], ['GET', '/v1/exports/sla-results.csv?from=2026-01&to=2026-02'], ['GET', '/v1/exports/audit.csv?from=2026-01-01&to=2026-02-01'],
  ];
  add('cross-tenant', 'console sign-in on operator routes', 5, (r, fx) => {
    const [method, path, body] = r.pick(operatorOnly(fx, r.chance(0.5) ? fx.A.accountId : fx.B.accountId));
    return apiCase(fx, 'cross-tenant', 'console sign-in on operator routes', { method, path, token: fx.A.console, body, headers: { 'idempotency-key': `k-${r.word(10)}` } }, 403, 'an account sign-in may not do this');
  });
  const writes = (fx) => [
    ['POST', '/v1/accounts', { name: 'evil' }, []], ['POST', `/v1/accounts/${fx.B.accountId}/keys`, undefined, []],
    ['POST', `/v1/accounts/${fx.B.accountId}/keys/${fx.B.key.secretId}/disable`, undefined, ['ops']], ['DELETE', `/v1/accounts/${fx.B.accountId}/keys/${fx.B.key.secretId}`, undefined, []],
    ['PUT', `/v1/accounts/${fx.B.accountId}/queues/${fx.B.queues.held}/qps-limit`, { qpsLimit: 1 }, ['ops']], ['POST', `/v1/accounts/${fx.B.accountId}/topups`, { amount: '1000.00' }, ['ops']],
    ['POST', `/v1/accounts/${fx.B.accountId}/adjustments`, { amount: '-1000.00', reason: 'x' }, ['ops']], ['POST', '/v1/usage-events', { events: [{ id: 'e1', accountId: fx.B.accountId, region: 'gz', action: 'PushMessage', billableCalls: 1 }] }, []],
    ['PUT', `/v1/accounts/${fx.B.accountId}/plans/gz`, { plan: 'default' }, []], ['PUT', `/v1/accounts/${fx.B.accountId}/webhook`, { url: 'http://127.0.0.1:9/x', secret: 'x'.repeat(20) }, []],
    ['DELETE', `/v1/accounts/${fx.B.accountId}/webhook`, undefined, []], ['PUT', `/v1/accounts/${fx.B.accountId}/alert-threshold`, { amount: '5.00' }, []],
    ['POST', '/v1/sla/maintenance', { region: 'gz', start: '2030-01-01T00:00:00Z', end: '2030-01-01T01:00:00Z', reason: 'x' }, ['ops']],
    ['POST', '/v1/sla/months/2020-01/close', undefined, ['ops']], ['POST', '/v1/sla/policies', {}, []], ['POST', '/v1/bills/2020-01/close', undefined, ['ops']],
    ['POST', '/v1/exports', { kind: 'ledger', from: '2026-01-01', to: '2026-02-01' }, ['ops', 'finance']], ['POST', '/v1/audit/releases', { version: '9.9.9', description: 'x' }, ['ops']],
    ['POST', '/v1/plans', { code: 'evil' }, []],
  ];
  add('cross-tenant', 'wrong role for a write', 8, (r, fx) => {
    const role = r.pick(['finance', 'ops']);
    const allowed = writes(fx).filter((w) => !w[3].includes(role));
    const [method, path, body] = r.pick(allowed);
    return apiCase(fx, 'cross-tenant', 'wrong role for a write', {
      method, path, body, token: fx.tokens[role], headers: { 'x-operator': 'bad-input-campaign', 'idempotency-key': `k-${r.word(10)}` },
    }, 403, new RegExp(`^the ${role} role may not do this \\(`));
  });
  add('cross-tenant', "console CMQ calls naming another tenant's resources", 5, (r, fx) => {
    const [action, params, expect, resource] = r.pick([
      ['GetQueueAttributes', { queueName: fx.B.queues.held }, E.queueNotExist, fx.B.queues.held],
      ['SendMessage', { queueName: fx.B.queues.held, msgBody: 'x' }, E.queueNotExist, fx.B.queues.held],
      ['ReceiveMessage', { queueName: fx.B.queues.sub, pollingWaitSeconds: 0 }, E.queueNotExist, fx.B.queues.sub],
      ['DeleteMessage', { queueName: fx.B.queues.held, receiptHandle: r.pick(fx.B.handles) }, E.queueNotExist, fx.B.queues.held],
      ['DeleteMessage', { queueName: fx.A.queues.main, receiptHandle: r.pick(fx.B.handles) }, E.handleInvalid, fx.A.queues.main],
      ['BatchDeleteMessage', { queueName: fx.A.queues.main, receiptHandle: fx.B.handles.slice(0, 3) }, E.batchDeleteFailed, fx.A.queues.main],
      ['DeleteQueue', { queueName: fx.B.queues.held }, E.queueNotExist, fx.B.queues.held],
      ['GetTopicAttributes', { topicName: fx.B.topic }, E.topicNotExist, fx.B.topic],
      ['Unsubscribe', { topicName: fx.B.topic, subscriptionName: fx.B.sub }, E.topicNotExist, fx.B.topic],
      ['PublishMessage', { topicName: fx.B.topic, msgBody: 'x' }, E.topicNotExist, fx.B.topic],
      ['Subscribe', { topicName: fx.A.topics.tags, subscriptionName: `s${r.word(8)}`, protocol: 'queue', endpoint: fx.B.queues.held }, E.queueNotExist, fx.A.topics.tags],
    ]);
    return consoleCmqCase(fx, 'cross-tenant', "console CMQ calls naming another tenant's resources", action, params, expect, resource);
  });
  add('cross-tenant', 'console CMQ calls the console does not make', 2, (r, fx) => {
    const [body, detail] = r.pick([
      [{ action: 'QueryQueueRoute', params: { queueName: fx.A.queues.main } }, 'the console does not make QueryQueueRoute'],
      [{ action: 'BatchSendMessage', params: { queueName: fx.A.queues.main, msgBody: ['x'] } }, 'the console does not make BatchSendMessage'],
      [{ action: 'GetQueueAttributes', params: { queueName: fx.B.queues.held, SecretId: fx.B.key.secretId } }, "parameter SecretId is not the console's to send"],
      [{ action: 'GetQueueAttributes', params: { queueName: fx.B.queues.held, Signature: 'x' } }, "parameter Signature is not the console's to send"],
      [{ action: 'ListQueue', params: { 'Region.x': 'gz' } }, "parameter Region.x is not the console's to send"],
      [{ action: 'ListQueue', params: { searchWord: { $ne: '' } } }, 'parameter searchWord must be a string, a number or a list of them'],
      [{ action: 'ListQueue', params: { searchWord: Array.from({ length: 17 }, () => 'x') } }, 'parameter searchWord must be a string, a number or a list of them'],
    ]);
    return apiCase(fx, 'cross-tenant', 'console CMQ calls the console does not make', { method: 'POST', path: '/console/api/cmq', token: fx.A.console, body }, 403, detail);
  });
  add('cross-tenant', 'console CMQ calls with an operator token', 1, (r, fx) =>
    apiCase(fx, 'cross-tenant', 'console CMQ calls with an operator token', { method: 'POST', path: '/console/api/cmq', token: fx.tokens.admin, body: { action: 'GetQueueAttributes', params: { queueName: fx.B.queues.held } } }, 403, 'CMQ calls need an account sign-in'));

  // ------------------------------------------------------------ mis-signed: internal API (bearer tokens)
  const someRoutes = (fx) => [
    ['GET', '/v1/accounts'], ['GET', `/v1/accounts/${fx.B.accountId}`], ['GET', `/v1/accounts/${fx.B.accountId}/keys`], ['POST', '/v1/accounts', { name: 'evil' }],
    ['POST', `/v1/accounts/${fx.B.accountId}/topups`, { amount: '1.00' }], ['GET', '/v1/audit'], ['GET', `/v1/exports/ledger.csv?from=2026-01-01&to=2026-02-01`],
    ['GET', '/console/api/session'], ['POST', '/console/api/cmq', { action: 'ListQueue', params: {} }], ['DELETE', `/v1/accounts/${fx.B.accountId}/keys/${fx.B.key.secretId}`],
  ];
  add('mis-signed', 'no bearer token', 3, (r, fx) => {
    const [method, path, body] = r.pick(someRoutes(fx));
    const auth = r.pick([undefined, 'Bearer', 'Bearer ', 'Basic YWRtaW46YWRtaW4=', `Token ${fx.tokens.admin}`, `Bearer ${fx.tokens.admin} extra`, `${fx.tokens.admin}`, 'Bearer\t', 'Digest x']);
    return apiCase(fx, 'mis-signed', 'no bearer token', { method, path, body, token: auth, rawAuth: true }, 401, 'missing bearer token');
  });
  add('mis-signed', 'garbage bearer token', 5, (r, fx) => {
    const [method, path, body] = r.pick(someRoutes(fx));
    const token = r.pick([
      r.word(32), `${fx.tokens.admin}x`, fx.tokens.admin.slice(0, -1), fx.tokens.admin.toUpperCase() === fx.tokens.admin ? `${fx.tokens.admin}Z` : fx.tokens.admin.toUpperCase(),
      `cs_${'A'.repeat(43)}`, `cs_${r.word(43)}`, `${fx.A.console}x`, fx.A.console.slice(0, -1), fx.B.key.secretKey, fx.A.key.secretId, 'null', 'undefined', "' OR '1'='1",
      'x'.repeat(r.range(300, 8000)), `cs_${fx.A.console}`,
    ]);
    // `Bearer <one word>` is a token that is not known; with blanks in it, no bearer token at all
    return apiCase(fx, 'mis-signed', 'garbage bearer token', { method, path, body, token }, 401, /\s/.test(token) ? 'missing bearer token' : 'invalid bearer token');
  });
  add('mis-signed', 'console sign-in with a bad key pair', 3, (r, fx) => {
    const [body, status, detail] = r.pick([
      [{ secretId: fx.A.key.secretId, secretKey: fx.B.key.secretKey }, 401, /^the SecretId and SecretKey do not sign in/],
      [{ secretId: fx.B.key.secretId, secretKey: fx.A.key.secretKey }, 401, /^the SecretId and SecretKey do not sign in/],
      [{ secretId: fx.A.disabledKey.secretId, secretKey: fx.A.disabledKey.secretKey }, 401, /^the SecretId and SecretKey do not sign in/],
      [{ secretId: fx.A.deletedKey.secretId, secretKey: fx.A.deletedKey.secretKey }, 401, /^the SecretId and SecretKey do not sign in/],
      [{ secretId: `AKID${r.word(32)}`, secretKey: r.word(32) }, 401, /^the SecretId and SecretKey do not sign in/],
      [{ secretId: fx.A.key.secretId, secretKey: fx.A.key.secretKey.slice(0, -1) }, 401, /^the SecretId and SecretKey do not sign in/],
      [{ secretId: `AKID' OR '1'='1`, secretKey: 'x' }, 400, 'secretId must be a SecretId (AKID…)'],
      [{ secretId: fx.A.key.secretId }, 400, /secretKey must be/],
      [{ secretId: fx.A.key.secretId, secretKey: 'x'.repeat(257) }, 400, /secretKey must be/],
      [{ secretId: fx.A.key.secretId, secretKey: fx.A.key.secretKey, role: 'admin' }, 400, 'property role should not exist'],
      [{ secretId: [fx.A.key.secretId], secretKey: fx.A.key.secretKey }, 400, /secretId must be/],
    ]);
    return apiCase(fx, 'mis-signed', 'console sign-in with a bad key pair', { method: 'POST', path: '/console/api/session', body }, status, detail);
  });

  // ------------------------------------------------------------ malformed: internal API
  /** Writes with a body: method, path, token, the body around one value, and values that field never takes. */
  const writeTargets = (fx) => {
    const common = [12, 1.5, true, null, [], ['x'], {}, { $gt: '' }, { $ne: null }];
    return [
      ['POST', '/v1/accounts', fx.tokens.admin, (v) => ({ name: v }), [...common, '', 'x'.repeat(129), 'x'.repeat(1000)]],
      ['POST', `/v1/accounts/${fx.A.accountId}/topups`, fx.tokens.ops, (v) => ({ amount: v }), [...common, '', ' ', 'abc', '1e9', 'NaN', '0x10', '-5.00', '0', '1.0000000001', "' OR '1'='1", '1,00']],
      ['POST', `/v1/accounts/${fx.A.accountId}/adjustments`, fx.tokens.ops, (v) => ({ amount: v, reason: 'campaign' }), [...common, '', 'abc', '1e9', 'NaN', '0x10', '1.0000000001', "' OR '1'='1"]],
      // null turns the alert off: a valid value
      ['PUT', `/v1/accounts/${fx.A.accountId}/alert-threshold`, fx.tokens.admin, (v) => ({ amount: v }), [...common.filter((v) => v !== null), '', 'abc', '1e9', 'NaN', '1.0000000001', "' OR '1'='1"]],
      ['PUT', `/v1/accounts/${fx.A.accountId}/webhook`, fx.tokens.admin, (v) => ({ url: v, secret: 'x'.repeat(20) }), [...common, '', 'ftp://x/', 'javascript:alert(1)', 'file:///etc/passwd', "' OR '1'='1", '../../etc/passwd']],
      // null goes back to the default: a valid value
      ['PUT', `/v1/accounts/${fx.A.accountId}/queues/${fx.A.queues.main}/qps-limit`, fx.tokens.ops, (v) => ({ qpsLimit: v }), [1.5, true, [], {}, '12', 0, -1, 1e308, 1000001]],
      ['POST', '/v1/audit/releases', fx.tokens.ops, (v) => ({ version: v, description: 'x' }), [...common, '', 'a b', 'x'.repeat(65)]],
      ['POST', '/v1/exports', fx.tokens.finance, (v) => ({ kind: v, from: '2026-01-01', to: '2026-02-01' }), [...common, '', "' OR '1'='1", '../../etc/passwd', 'LEDGER', 'ledger.csv']],
      ['POST', '/console/api/session', undefined, (v) => ({ secretId: v, secretKey: 'x' }), [...common, '', "AKID' OR '1'='1", '../../etc/passwd', 'AKID']],
    ];
  };
  add('malformed', 'malformed JSON', 5, (r, fx) => {
    const [method, path, token] = r.pick(writeTargets(fx));
    const [text, detail] = r.pick([
      ['{', /^Body is not valid JSON/], ['{"name":', /^Body is not valid JSON/], ['[1,', /^Body is not valid JSON/], ["{'name':'x'}", /^Body is not valid JSON/],
      ['{"a":1}{"b":2}', /^Body is not valid JSON/], ['{"a":1,}', /^Body is not valid JSON/], ['{"a":NaN}', /^Body is not valid JSON/], ['{"a":undefined}', /^Body is not valid JSON/],
      ['', /^Body cannot be empty/], ['\u0000', /^Body is not valid JSON/], ['{"a":"\\ud800"}x', /^Body is not valid JSON/],
      ['{"__proto__":{"isAdmin":true},"name":"x"}', /^Body is not valid JSON/], ['{"constructor":{"prototype":{"isAdmin":true}}}', /^Body is not valid JSON/],
    ]);
    return apiCase(fx, 'malformed', 'malformed JSON', { method, path, token, body: text, headers: { 'x-operator': 'bad-input-campaign', 'idempotency-key': `k-${r.word(10)}` } }, 400, detail);
  });
  add('malformed', 'wrong JSON types', 6, (r, fx) => {
    const [method, path, token, make, invalid] = r.pick(writeTargets(fx));
    return apiCase(fx, 'malformed', 'wrong JSON types', { method, path, token, body: make(r.pick(invalid)), headers: { 'x-operator': 'bad-input-campaign', 'idempotency-key': `k-${r.word(10)}` } }, 400, undefined);
  });
  add('malformed', 'JSON body that is not an object', 2, (r, fx) => {
    const [method, path, token] = r.pick(writeTargets(fx));
    const text = r.pick(['null', '123', '"str"', '[1,2]', 'true', '[]', '[{}]', '1e400']);
    return apiCase(fx, 'malformed', 'JSON body that is not an object', { method, path, token, body: text, headers: { 'x-operator': 'bad-input-campaign', 'idempotency-key': `k-${r.word(10)}` } }, 400, undefined);
  });
  add('malformed', 'unknown fields', 3, (r, fx) => {
    const [method, path, token, make] = r.pick(writeTargets(fx));
    const field = r.pick(['evil', 'role', 'isAdmin', 'balance', 'createdAt', 'principal', '__v']);
    const body = { ...make('x'), [field]: r.pick([1, 'x', true]) };
    return apiCase(fx, 'malformed', 'unknown fields', { method, path, token, body, headers: { 'x-operator': 'bad-input-campaign', 'idempotency-key': `k-${r.word(10)}` } }, 400, new RegExp(`property ${field} should not exist`));
  });
  add('malformed', 'deeply nested JSON', 2, (r, fx) => {
    const [method, path, token] = r.pick(writeTargets(fx));
    const arrays = r.chance(0.5);
    // up to what fits in the 1 MiB body limit
    const depth = r.pick([40, 1000, arrays ? r.range(10000, 400000) : r.range(10000, 140000)]);
    const inner = arrays ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
    const body = r.chance(0.5) ? inner : `{"name":"x","deep":${inner}}`;
    return apiCase(fx, 'malformed', 'deeply nested JSON', { method, path, token, body, headers: { 'x-operator': 'bad-input-campaign', 'idempotency-key': `k-${r.word(10)}` } }, 400, 'the JSON body nests deeper than 32 levels');
  });
  add('malformed', 'NUL characters', 3, (r, fx) => {
    const where = r.pick(['body', 'query', 'key']);
    if (where === 'query') {
      const path = r.pick([
        `/v1/accounts?search=${r.pick(['%00', 'a%00b'])}`, `/v1/accounts/${fx.A.accountId}/usage?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&resource=%00`,
        `/v1/audit?accountId=%00`, `/v1/accounts/${fx.A.accountId}/ledger?cursor=%00`,
      ]);
      return apiCase(fx, 'malformed', 'NUL characters', { method: 'GET', path, token: fx.tokens.finance }, 400, 'text must not contain NUL characters (U+0000)');
    }
    const [method, path, token, make] = r.pick(writeTargets(fx).filter(([, p]) => p !== '/console/api/session'));
    const body = where === 'body' ? make(`a\u0000b`) : { ...make('x'), 'k\u0000': 1 };
    if (path.endsWith('/adjustments') && where === 'body') body.reason = 'r\u0000';
    return apiCase(fx, 'malformed', 'NUL characters', { method, path, token, body, headers: { 'x-operator': 'bad-input-campaign', 'idempotency-key': `k-${r.word(10)}` } }, 400, 'text must not contain NUL characters (U+0000)');
  });
  add('malformed', 'odd content type', 3, (r, fx) => {
    const [method, path, token] = r.pick(writeTargets(fx));
    const [type, body, status] = r.pick([
      ['application/xml', '<name>x</name>', 415], ['multipart/form-data; boundary=x', '--x\r\n\r\n--x--', 415], ['image/png', '\x89PNG', 415], ['application/octet-stream', 'x', 415],
      ['text/plain', '{"name":"x"}', 400], ['text/plain', 'name=x', 400],
    ]);
    return apiCase(fx, 'malformed', 'odd content type', { method, path, token, body, headers: { 'content-type': type, 'x-operator': 'bad-input-campaign', 'idempotency-key': `k-${r.word(10)}` } }, status, undefined);
  });
  add('malformed', 'bad path ids', 5, (r, fx) => {
    const bad = r.pick(['not-a-uuid', '1', '-1', '99999999999999999999', ...SQLI.map(encodeURIComponent), ...TRAVERSAL.map(encodeURIComponent), '%2e%2e', `${fx.A.accountId}x`, 'null', '%7B%7D']);
    const [method, path, status, detail, token] = r.pick([
      ['GET', `/v1/accounts/${bad}`, 400, 'Validation failed (uuid is expected)', fx.tokens.finance],
      ['GET', `/v1/accounts/${bad}/balance`, 400, 'Validation failed (uuid is expected)', fx.tokens.finance],
      ['POST', `/v1/accounts/${bad}/keys`, 400, 'Validation failed (uuid is expected)', fx.tokens.admin],
      ['GET', `/v1/exports/${bad}`, 400, 'Validation failed (uuid is expected)', fx.tokens.finance],
      ['GET', `/v1/exports/${bad}/file`, 400, 'Validation failed (uuid is expected)', fx.tokens.finance],
      ['GET', `/v1/accounts/${fx.A.accountId}/bills/${bad}`, 400, 'month must be YYYY-MM', fx.tokens.finance],
      ['GET', `/v1/sla/months/${bad}`, 400, 'month must be YYYY-MM', fx.tokens.finance],
      ['POST', `/v1/bills/${bad}/close`, 400, 'month must be YYYY-MM', fx.tokens.ops],
      ['GET', `/v1/plans/${encodeURIComponent(r.pick([...SQLI, ...TRAVERSAL, 'PLAN', 'a b']))}`, 400, 'code must be a plan code (lower-case letters, digits, _ and -)', fx.tokens.finance],
    ]);
    return apiCase(fx, 'malformed', 'bad path ids', { method, path, token, headers: { 'x-operator': 'bad-input-campaign' } }, status, detail);
  });
  add('malformed', 'path ids that do not exist', 4, (r, fx) => {
    const id = `00000000-0000-4000-8000-${r.hex(12)}`;
    const [method, path, token, detail] = r.pick([
      ['GET', `/v1/accounts/${id}`, fx.tokens.finance, `account ${id} does not exist`],
      ['GET', `/v1/accounts/${id}/balance`, fx.tokens.finance, `account ${id} does not exist`],
      ['GET', `/v1/accounts/${id}/keys`, fx.tokens.ops, `account ${id} does not exist`],
      ['POST', `/v1/accounts/${id}/keys`, fx.tokens.admin, `account ${id} does not exist`],
      ['GET', `/v1/exports/${id}`, fx.tokens.finance, `no export ${id}`],
      ['GET', `/v1/accounts/${fx.A.accountId}/bills/2019-01`, fx.tokens.finance, `no bill for account ${fx.A.accountId} in 2019-01`],
      ['POST', `/v1/accounts/${fx.A.accountId}/keys/AKID${r.word(20)}/disable`, fx.tokens.ops, /^key AKID\w+ does not exist$/],
      ['POST', `/v1/accounts/${fx.A.accountId}/keys/${encodeURIComponent(r.pick(SQLI))}/disable`, fx.tokens.ops, /^key .* does not exist$/],
      ['GET', `/v1/sla/maintenance/${r.range(1e6, 1e9)}`, fx.tokens.finance, /^maintenance window \d+ does not exist$/],
      ['POST', `/v1/sla/attributions/${r.range(1e6, 1e9)}/withdraw`, fx.tokens.ops, /^attribution \d+ does not exist$/],
    ]);
    const body = path.endsWith('/withdraw') ? { reason: 'campaign' } : undefined;
    return apiCase(fx, 'malformed', 'path ids that do not exist', { method, path, token, body, headers: { 'x-operator': 'bad-input-campaign' } }, 404, detail);
  });
  add('malformed', 'bad query parameters', 5, (r, fx) => {
    const sq = encodeURIComponent(r.pick(SQLI));
    const [path, detail] = r.pick([
      [`/v1/accounts/${fx.A.accountId}/ledger?cursor=${sq}`, 'cursor is not valid: pass the nextCursor of the previous page'],
      [`/v1/accounts/${fx.A.accountId}/ledger?cursor=eyJ4IjoxfQ`, 'cursor is not valid: pass the nextCursor of the previous page'],
      [`/v1/accounts/${fx.A.accountId}/ledger?limit=${r.pick(['abc', '-1', '0', '101', '1.5', '1e3'])}`, /limit must be an integer from 1 to 100/],
      [`/v1/accounts/${fx.A.accountId}/ledger?from=${sq}`, /from must be an ISO 8601 time/],
      [`/v1/accounts/${fx.A.accountId}/ledger?kind=${sq}`, /^kind must be entry kinds/],
      [`/v1/accounts/${fx.A.accountId}/usage`, /from is required/],
      [`/v1/accounts/${fx.A.accountId}/usage?from=2026-01-01T00:00:00Z&to=2026-01-01T00:30:00Z`, /to must be on a whole hour/],
      [`/v1/accounts/${fx.A.accountId}/usage?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z`, /from must be before to/],
      [`/v1/accounts/${fx.A.accountId}/usage?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z`, /400 days/],
      [`/v1/accounts/${fx.A.accountId}/usage?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&granularity=${sq}`, /granularity/],
      [`/v1/accounts/${fx.A.accountId}/usage?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&groupBy=${sq}`, /groupBy/],
      [`/v1/accounts/${fx.A.accountId}/statements?from=${sq}&to=2026-01-02T00:00:00Z`, /from/],
      [`/v1/audit?accountId=${sq}`, 'accountId must be a UUID'],
      [`/v1/audit?domain=${sq}`, 'domain must be one of queues, accounts, billing, sla, system'],
      [`/v1/audit?actorKind=${sq}`, 'actorKind must be one of user, operator, component'],
      [`/v1/exports/ledger.csv?from=2026-02-01&to=2026-01-01`, /from must be before to/],
      [`/v1/exports/ledger.csv?from=2026-01-01&to=2026-02-01&accountId=${sq}`, /accountId must be a UUID/],
      [`/v1/exports/bills.csv?from=${sq}&to=2026-02`, /from/],
      [`/v1/accounts?limit=${r.pick(['0', '-5', 'x', '101'])}`, /limit/],
      [`/v1/accounts?search=${'s'.repeat(129)}`, 'search must be at most 128 characters'],
      [`/v1/accounts?search=a&search=b`, /search must be given once/],
    ]);
    return apiCase(fx, 'malformed', 'bad query parameters', { method: 'GET', path, token: r.pick([fx.tokens.finance, fx.tokens.admin]) }, 400, detail);
  });
  add('malformed', 'SQL injection in a search', 2, (r, fx) => {
    const q = encodeURIComponent(r.pick([...SQLI, "%' OR name LIKE '%", '%', '_', '\\']));
    // a search is a substring of a name, an exact id or appId: none of these is one
    return apiCase(fx, 'malformed', 'SQL injection in a search', { method: 'GET', path: `/v1/accounts?search=${q}`, token: fx.tokens.finance }, 200, undefined, {
      json: (j) => Array.isArray(j.accounts) && j.accounts.every((a) => !a.id || (a.id !== fx.A.accountId && a.id !== fx.B.accountId)) || 'accounts listed',
    });
  });
  add('malformed', 'path traversal', 3, (r, fx) => {
    const [path, status] = r.pick([
      ['/console/../../../etc/passwd', 403], ['/console/%2e%2e/%2e%2e/package.json', 403], ['/console/..%5c..%5cpackage.json', 403], ['/console/vendor/../../../../package.json', 403],
      ['/console/vendor/%2e%2e%2f%2e%2e%2fpackage.json', 404], ['/console/..%2f..%2f..%2fetc%2fpasswd', 404], [`/v1/accounts/${fx.A.accountId}/../../../etc/passwd`, 404],
      ['/docs/../../package.json', 403], ['/v1/exports/..%2F..%2Fetc%2Fpasswd', 400], ['/v1/exports/../../etc/passwd/file', 404], ['/%2e%2e/%2e%2e/etc/passwd', 404],
    ]);
    return apiCase(fx, 'malformed', 'path traversal', { method: 'GET', path, token: fx.tokens.finance }, status, undefined);
  });
  add('malformed', 'unknown route or method', 2, (r, fx) => {
    const [method, path] = r.pick([['PATCH', '/v1/accounts'], ['PUT', '/v1/accounts'], ['DELETE', `/v1/accounts/${fx.B.accountId}`], ['OPTIONS', '/v1/accounts'], ['GET', '/v1/secrets'], ['POST', '/v1/accounts/x/y/z'], ['GET', '/v2/index.php'], ['GET', '/.env'], ['GET', '/admin']]);
    return apiCase(fx, 'malformed', 'unknown route or method', { method, path, token: fx.tokens.admin }, 404, new RegExp(`^Cannot ${method} `));
  });
  add('malformed', 'bad X-Operator or Idempotency-Key', 2, (r, fx) => {
    const [headers, detail] = r.pick([
      [{ 'x-operator': 'x'.repeat(129), 'idempotency-key': `k-${r.word(8)}` }, 'X-Operator must be 1-128 printable ASCII characters'],
      [{ 'x-operator': 'op\u00e9', 'idempotency-key': `k-${r.word(8)}` }, 'X-Operator must be 1-128 printable ASCII characters'],
      [{ 'x-operator': 'bad-input-campaign' }, 'the Idempotency-Key header is required'],
    ]);
    return apiCase(fx, 'malformed', 'bad X-Operator or Idempotency-Key', { method: 'POST', path: `/v1/accounts/${fx.A.accountId}/topups`, token: fx.tokens.ops, body: { amount: '1.00' }, headers }, 400, detail);
  });

  // ------------------------------------------------------------ oversized: internal API
  add('oversized', 'JSON body over 1 MiB', 0.5, (r, fx) => {
    const [method, path, token] = r.pick(writeTargets(fx));
    return apiCase(fx, 'oversized', 'JSON body over 1 MiB', { method, path, token, body: `{"name":"${'n'.repeat(1024 * 1024 + r.range(1, 100000))}"}`, headers: { 'x-operator': 'bad-input-campaign' } }, 413, 'Request body is too large');
  });
  add('oversized', 'over-long strings in a body', 3, (r, fx) => {
    const long = 'l'.repeat(r.range(129, 100000));
    const [method, path, token, body, detail] = r.pick([
      ['POST', '/v1/accounts', fx.tokens.admin, { name: long }, 'name must be shorter than or equal to 128 characters'],
      ['POST', '/v1/audit/releases', fx.tokens.ops, { version: long, description: 'x' }, /^version must be/],
      ['POST', `/v1/accounts/${fx.A.accountId}/topups`, fx.tokens.ops, { amount: '1' + '0'.repeat(r.range(30, 1000)) + '.00' }, /amount/],
      ['POST', '/console/api/session', undefined, { secretId: `AKID${long}`, secretKey: 'x' }, 'secretId must be a SecretId (AKID…)'],
      ['POST', '/console/api/cmq', fx.A.console, { action: `A${long}`, params: {} }, 'action must be a CMQ action name'],
    ]);
    return apiCase(fx, 'oversized', 'over-long strings in a body', { method, path, token, body, headers: { 'x-operator': 'bad-input-campaign', 'idempotency-key': `k-${r.word(8)}` } }, 400, detail);
  });
  add('oversized', 'huge header or URL', 0.8, (r, fx) => {
    const kind = r.pick(['header', 'query', 'param']);
    if (kind === 'header') return apiCase(fx, 'oversized', 'huge header or URL', { method: 'GET', path: '/v1/accounts', fresh: true, token: fx.tokens.admin, headers: { 'x-padding': 'p'.repeat(r.range(17 * 1024, 64 * 1024)) } }, 431, undefined);
    if (kind === 'query') return apiCase(fx, 'oversized', 'huge header or URL', { method: 'GET', path: `/v1/accounts?search=${'q'.repeat(r.range(17 * 1024, 64 * 1024))}`, fresh: true, token: fx.tokens.admin }, 431, undefined);
    return apiCase(fx, 'oversized', 'huge header or URL', { method: 'GET', path: `/v1/accounts/${'a'.repeat(r.range(101, 4000))}`, token: fx.tokens.admin }, 414, undefined);
  });
  add('oversized', 'too many items', 1, (r, fx) =>
    apiCase(fx, 'oversized', 'too many items', {
      method: 'POST', path: '/v1/usage-events', token: fx.tokens.admin,
      body: { events: Array.from({ length: 1001 }, (_, i) => ({ id: `e${i}`, accountId: fx.B.accountId, region: 'gz', action: 'PushMessage', billableCalls: 1 })) },
    }, 400, /events must contain no more than 1000 elements/));

  return T;
}

/**
 * The campaign of `count` requests at least (a replay case is two), deterministic from `seed`:
 * templates drawn by weight, each filled from the same stream of random numbers.
 */
function buildCases(fx, { seed, count }) {
  const r = new Rng(seed);
  const T = templates();
  const total = T.reduce((n, t) => n + t.weight, 0);
  const cases = [];
  let requests = 0;
  while (requests < count) {
    let x = r.next() * total;
    let t = T[T.length - 1];
    for (const cand of T) {
      if (x < cand.weight) {
        t = cand;
        break;
      }
      x -= cand.weight;
    }
    const c = t.make(r, fx);
    c.id = cases.length;
    cases.push(c);
    requests += c.make.length;
  }
  return cases;
}

// ---------------------------------------------------------------- sending

function decodeSafe(s) {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * One HTTP exchange; never rejects: `{status, text}` or `{error}` (no answer at all). A body is
 * written in pieces, and no more of it once the answer has begun: a server may answer (and
 * close) before it read a body it refuses, as the CMQ endpoint does past its size limit.
 */
function send(req, agents, timeoutMs = 60000) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let done = false;
    let answered = false;
    const finish = (r) => {
      if (done) return;
      done = true;
      resolve({ ...r, ms: performance.now() - t0 });
    };
    const body = req.body === undefined ? undefined : Buffer.isBuffer(req.body) ? req.body : Buffer.from(req.body, 'utf8');
    const headers = { ...req.headers };
    if (body !== undefined && !req.chunked) headers['content-length'] = String(body.length);
    let hreq;
    try {
      hreq = http.request(
        { host: '127.0.0.1', port: req.port, method: req.method, path: req.path, headers, agent: req.fresh ? false : agents.get(req.port) },
        (res) => {
          answered = true;
          const chunks = [];
          let size = 0;
          res.on('data', (c) => {
            size += c.length;
            if (size <= 4 * 1024 * 1024) chunks.push(c);
          });
          res.on('end', () => {
            finish({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') });
            if (!hreq.writableFinished) hreq.destroy();
          });
          res.on('error', (err) => finish({ error: `response ${err.code || err.message}` }));
        },
      );
    } catch (err) {
      finish({ error: `request not sendable: ${err.message}` });
      return;
    }
    hreq.setTimeout(timeoutMs, () => hreq.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    hreq.on('error', (err) => {
      if (!answered) finish({ error: `transport ${err.code || err.message}` });
    });
    if (body === undefined) {
      hreq.end();
      return;
    }
    if (body.length <= 256 * 1024) {
      hreq.end(body);
      return;
    }
    // a big body goes in pieces, and after the first one the client waits a moment for an early
    // answer (RFC 9110 §15.5.14: a server may refuse a body too large at once and close), as
    // careful HTTP clients do; it stops writing as soon as the answer has begun
    let off = 0;
    const step = 64 * 1024;
    const pump = () => {
      if (answered || hreq.destroyed) return;
      if (off >= body.length) {
        hreq.end();
        return;
      }
      const ok = hreq.write(body.subarray(off, off + step));
      off += step;
      const wait = off === step ? 200 : 1;
      if (ok) setTimeout(pump, wait);
      else hreq.once('drain', () => setTimeout(pump, wait));
    };
    pump();
  });
}

async function pool(items, concurrency, fn) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

// ---------------------------------------------------------------- checking one answer

/** What must never be in an answer: stack frames, SQL, file paths, driver errors. */
const HYGIENE = [
  ['stack trace', /\bat (?:async )?[\w$.<>\[\] ]+ \((?:\/|node:|file:)[^)]*:\d+:\d+\)/],
  ['stack trace', /\n\s+at \S+/],
  ['file path', /(?:\/work\/|\/home\/|\/usr\/lib\/|node_modules|\/dist\/(?:apps|libs)\/|\.ts:\d+|\.js:\d+:\d+)/],
  ['SQL', /\b(?:SELECT\b[\s\S]{1,200}\bFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b/i],
  ['database error', /(?:syntax error at or near|violates [\w ]*constraint|duplicate key value|invalid byte sequence|invalid input syntax for|relation "\w+"|column "\w+"|QueryFailedError|PostgresError|SQLSTATE|pg_catalog)/i],
  ['internal error class', /\b(?:TypeError|RangeError|ReferenceError|SyntaxError: Unexpected|Maximum call stack)\b/],
];

function collectStrings(v, out) {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const x of v) collectStrings(x, out);
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) {
    out.push(k);
    collectStrings(x, out);
  }
  return out;
}

function walk(v, fn, key = '') {
  if (Array.isArray(v)) v.forEach((x) => walk(x, fn, key));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, fn, k);
  else fn(key, v);
}

/** The leaks and hygiene faults of one answer: what it shows that the request did not carry. */
function inspectAnswer(fx, reqText, text, json) {
  const problems = [];
  const texts = [text, ...(json !== undefined ? collectStrings(json, []) : [])];
  const lowerReq = reqText.toLowerCase();
  for (const [what, secret] of fx.secrets) {
    if (!secret) continue;
    const s = secret.toLowerCase();
    if (lowerReq.includes(s)) continue;
    if (texts.some((t) => t.toLowerCase().includes(s))) problems.push(`leak: ${what}`);
  }
  if (json !== undefined) {
    walk(json, (k, v) => {
      if ((k === 'msgId' || k === 'appId' || k === 'TopicOwner') && fx.secretIds.has(String(v)) && !reqText.includes(String(v))) problems.push(`leak: another tenant's ${k}`);
      if (k === 'receiptHandle' && typeof v === 'string' && fx.secretIds.has(v.split('-')[0]) && !reqText.includes(v)) problems.push("leak: another tenant's receipt handle");
    });
  }
  for (const [what, re] of HYGIENE) {
    for (const t of texts) {
      const m = re.exec(t);
      if (m && !reqText.includes(m[0]) && !decodeSafe(reqText).includes(m[0])) {
        problems.push(`${what} in the answer: ${JSON.stringify(m[0].slice(0, 80))}`);
        break;
      }
    }
  }
  return problems;
}

/** Compares one answer with what was expected; returns the reasons it does not match. */
function judge(exp, res, req) {
  const out = [];
  if (res.error) return [`no answer (${res.error})`];
  if (exp.http !== undefined) {
    // CMQ: always HTTP 200, the exact code, the exact message where the spec fixes it
    const want = req.expectOverride ? { code: req.expectOverride[0], message: req.expectOverride[1] } : exp;
    if (res.status !== exp.http) out.push(`HTTP ${res.status}, expected ${exp.http}`);
    let j;
    try {
      j = JSON.parse(res.text);
    } catch {
      return [...out, 'reply is not JSON'];
    }
    if (typeof j.code !== 'number' || typeof j.message !== 'string' || typeof j.requestId !== 'string') out.push('reply without integer code, string message and string requestId');
    if (j.code !== want.code) out.push(`code ${j.code}, expected ${want.code}`);
    if (want.message !== undefined && j.message !== want.message) out.push(`message ${JSON.stringify(j.message)}, expected ${JSON.stringify(want.message)}`);
    return out;
  }
  // internal API: the exact status, a reason in the body (problem details, or the HTTP server's own JSON)
  if (res.status !== exp.status) out.push(`HTTP ${res.status}, expected ${exp.status}`);
  let j;
  try {
    j = res.text ? JSON.parse(res.text) : undefined;
  } catch {
    j = undefined;
  }
  if (exp.cmq) {
    if (!j) return [...out, 'console CMQ reply is not JSON'];
    if (j.code !== exp.cmq.code) out.push(`CMQ code ${j.code}, expected ${exp.cmq.code}`);
    if (exp.cmq.message !== undefined && j.message !== exp.cmq.message) out.push(`CMQ message ${JSON.stringify(j.message)}, expected ${JSON.stringify(exp.cmq.message)}`);
    return out;
  }
  if (exp.json) {
    const verdict = j === undefined ? 'not JSON' : exp.json(j);
    if (verdict !== true) out.push(`body: ${verdict}`);
    return out;
  }
  if (exp.status >= 400) {
    const reason = j && (typeof j.detail === 'string' ? j.detail : typeof j.message === 'string' ? j.message : undefined);
    if (!reason) out.push('no reason in the body');
    else if (exp.detail instanceof RegExp ? !exp.detail.test(reason) : exp.detail !== undefined && reason !== exp.detail) {
      out.push(`reason ${JSON.stringify(reason.slice(0, 200))}, expected ${exp.detail instanceof RegExp ? exp.detail : JSON.stringify(exp.detail)}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------- running

/**
 * Sends every case (`concurrency` cases at a time; a replay's two requests one after the other,
 * or both at once) and judges every answer. Returns the per-request results and tallies.
 */
async function runCases(fx, cases, { concurrency = 16, onProgress } = {}) {
  const agents = new Map([
    [fx.cmq.port, new http.Agent({ keepAlive: true, maxSockets: concurrency })],
    [fx.api.port, new http.Agent({ keepAlive: true, maxSockets: concurrency })],
  ]);
  const tallies = {};
  for (const cat of CATEGORIES) tallies[cat] = { sent: 0, matched: 0, mismatched: 0, cmq: 0, api: 0 };
  const mismatches = [];
  const global = { fiveXX: 0, code6000: 0, leaks: 0, hygiene: 0, noAnswer: 0 };
  const byTemplate = {};
  const served = [];
  let sent = 0;
  await pool(cases, concurrency, async (c) => {
    const reqs = [];
    const results = [];
    if (c.mode === 'par') {
      const built = c.make.map((m) => m());
      reqs.push(...built);
      results.push(...(await Promise.all(built.map((q) => send(q, agents)))));
    } else {
      for (const m of c.make) {
        const q = m();
        reqs.push(q);
        results.push(await send(q, agents));
      }
    }
    // judging: a concurrent pair matches its expectations in either order
    let verdicts = results.map((res, i) => judge(c.expect[i], res, reqs[i]));
    let order = results.map((_, i) => i);
    if (c.mode === 'par' && verdicts.some((v) => v.length > 0)) {
      const swapped = [judge(c.expect[0], results[1], reqs[1]), judge(c.expect[1], results[0], reqs[0])];
      if (swapped.every((v) => v.length === 0)) {
        verdicts = swapped;
        order = [1, 0];
      }
    }
    const reqText = reqs.map((q) => `${decodeSafe(q.path)}\n${q.body === undefined ? '' : Buffer.isBuffer(q.body) ? q.body.toString('latin1') : q.body}\n${(q.plain || []).map(([k, v]) => `${k}=${v}`).join('\n')}`).join('\n');
    const t = tallies[c.cat];
    const tt = (byTemplate[`${c.cat}: ${c.tpl}`] ??= { cat: c.cat, target: c.target, sent: 0, matched: 0 });
    results.forEach((res, i) => {
      sent++;
      t.sent++;
      t[c.target]++;
      tt.sent++;
      const problems = [...verdicts[i]];
      if (res.error) global.noAnswer++;
      if (res.status >= 500) {
        global.fiveXX++;
        problems.push(`5xx: HTTP ${res.status}`);
      }
      let json;
      try {
        json = res.text ? JSON.parse(res.text) : undefined;
      } catch {
        json = undefined;
      }
      if (json && json.code === 6000) {
        global.code6000++;
        problems.push('CMQ code 6000');
      }
      if (res.text) {
        const inspected = inspectAnswer(fx, reqText, res.text, json);
        for (const p of inspected) {
          if (p.startsWith('leak')) global.leaks++;
          else global.hygiene++;
        }
        problems.push(...inspected);
      }
      const expIndex = order[i];
      const meter = c.meters[expIndex];
      served.push({ meter, ok: problems.length === 0 });
      if (problems.length === 0) {
        t.matched++;
        tt.matched++;
      } else {
        t.mismatched++;
        mismatches.push({
          id: c.id,
          category: c.cat,
          template: c.tpl,
          request: c.describe,
          step: i + 1,
          problems: [...new Set(problems)],
          answer: res.error ? res.error : `HTTP ${res.status} ${String(res.text).slice(0, 400)}`,
        });
      }
    });
    if (onProgress) onProgress(sent);
  });
  for (const a of agents.values()) a.destroy();
  // the usage that should have been metered: every request that passed authentication
  const expectedUsage = {};
  for (const s of served) {
    const m = s.meter;
    if (!m) continue;
    const k = `${m.action}|${m.outcome}|${m.resource}`;
    const e = (expectedUsage[k] ??= { calls: 0, messages: 0, bytesIn: 0, bytesOut: 0, sizeBands: 0, per64k: 0 });
    e.calls++;
    e.messages += m.messages || 0;
    e.bytesIn += m.bytesIn || 0;
    e.sizeBands += m.sizeBands || 0;
    e.per64k += m.per64k || 0;
  }
  return { sent, tallies, byTemplate, mismatches, global, expectedUsage, stored: cases.filter((c) => c.stores).flatMap((c) => c.stores) };
}

// ---------------------------------------------------------------- fixtures: two tenants and their resources

async function apiCall(billingUrl, method, path, { token, body, headers = {} } = {}) {
  const res = await fetch(billingUrl + path, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = text;
  }
  return { status: res.status, body: json };
}

/** A plain signed CMQ call for the set-up and the checks after (not part of the campaign). */
async function cmqCall(fx, key, action, params) {
  const req = cmqRequest(fx, { key, action, nonce: String(Math.floor(Math.random() * 2 ** 31)), params })();
  const res = await send(req, new Map());
  if (res.error) throw new Error(`${action}: ${res.error}`);
  return JSON.parse(res.text);
}

async function must(p, what) {
  const r = await p;
  if ((r.status !== undefined && (r.status < 200 || r.status >= 300)) || (r.code !== undefined && r.code !== 0)) throw new Error(`set-up ${what}: ${JSON.stringify(r)}`);
  return r.body ?? r;
}

/**
 * Tenants A (the attacker: its keys, a disabled and a deleted key, queues, topics, a console
 * sign-in) and B (the victim: queues with messages in flight and held receipt handles, a delayed
 * message, a topic with a subscription), made through the public APIs.
 * `limits`: what the deployment is configured with (request size, signature window).
 */
async function setupFixtures({ cmqPort, billingPort, tokens, limits, tag }) {
  const billingUrl = `http://127.0.0.1:${billingPort}`;
  const fx = { cmq: { port: cmqPort, host: `127.0.0.1:${cmqPort}` }, api: { port: billingPort }, tokens, limits: { smallQueueMsgSize: 1024, tagsTopicMsgSize: 1024, ...limits } };
  const admin = (method, path, body) => must(apiCall(billingUrl, method, path, { token: tokens.admin, body }), `${method} ${path}`);
  const hex = tag;
  const accA = await admin('POST', '/v1/accounts', { name: `chaos-a-${hex}` });
  const accB = await admin('POST', '/v1/accounts', { name: `chaos-b-${hex}` });
  const keyA = await admin('POST', `/v1/accounts/${accA.id}/keys`);
  const disabled = await admin('POST', `/v1/accounts/${accA.id}/keys`);
  await admin('POST', `/v1/accounts/${accA.id}/keys/${disabled.secretId}/disable`);
  const deleted = await admin('POST', `/v1/accounts/${accA.id}/keys`);
  await admin('DELETE', `/v1/accounts/${accA.id}/keys/${deleted.secretId}`);
  const keyB = await admin('POST', `/v1/accounts/${accB.id}/keys`);
  const A = { secretId: keyA.secretId, secretKey: keyA.secretKey };
  const B = { secretId: keyB.secretId, secretKey: keyB.secretKey };
  const startedAt = Math.floor(Date.now() / 1000);

  const aq = { small: 'aq-small', big: 'aq-big', main: 'aq-main', replay: 'aq-replay', delay: 'aq-delay' };
  const at = { tags: 'at-tags', route: 'at-route' };
  await must(cmqCall(fx, A, 'CreateQueue', { queueName: aq.small, maxMsgSize: '1024' }), 'queue');
  await must(cmqCall(fx, A, 'CreateQueue', { queueName: aq.big, maxMsgSize: '1048576' }), 'queue');
  await must(cmqCall(fx, A, 'CreateQueue', { queueName: aq.main }), 'queue');
  await must(cmqCall(fx, A, 'CreateQueue', { queueName: aq.replay }), 'queue');
  await must(cmqCall(fx, A, 'CreateQueue', { queueName: aq.delay }), 'queue');
  const delayed = await must(cmqCall(fx, A, 'SendMessage', { queueName: aq.delay, msgBody: `a-delayed-${hex}`, delaySeconds: '86400' }), 'delayed send');
  await must(cmqCall(fx, A, 'CreateTopic', { topicName: at.tags, maxMsgSize: '1024', filterType: '1' }), 'topic');
  await must(cmqCall(fx, A, 'CreateTopic', { topicName: at.route, filterType: '2' }), 'topic');
  await must(cmqCall(fx, A, 'Subscribe', { topicName: at.tags, subscriptionName: 'as-main', protocol: 'queue', endpoint: aq.main }), 'subscription');
  await must(cmqCall(fx, A, 'Subscribe', { topicName: at.route, subscriptionName: 'as-route', protocol: 'queue', endpoint: aq.main, 'bindingKey.1': 'a.*' }), 'subscription');

  const bq = { held: `bq-${hex}-held`, sub: `bq-${hex}-sub` };
  const bt = `bt-${hex}`;
  const bs = `bs-${hex}`;
  await must(cmqCall(fx, B, 'CreateQueue', { queueName: bq.held, visibilityTimeout: '43200', rewindSeconds: '3600' }), 'queue');
  await must(cmqCall(fx, B, 'CreateQueue', { queueName: bq.sub }), 'queue');
  await must(cmqCall(fx, B, 'CreateTopic', { topicName: bt }), 'topic');
  await must(cmqCall(fx, B, 'Subscribe', { topicName: bt, subscriptionName: bs, protocol: 'queue', endpoint: bq.sub }), 'subscription');
  const bodies = Array.from({ length: 12 }, (_, i) => `b-secret-body-${hex}-${i}`);
  const sent = await must(cmqCall(fx, B, 'BatchSendMessage', { queueName: bq.held, ...Object.fromEntries(bodies.map((b, i) => [`msgBody.${i + 1}`, b])) }), 'send');
  const msgIds = sent.msgList.map((m) => m.msgId);
  const bDelayed = await must(cmqCall(fx, B, 'SendMessage', { queueName: bq.held, msgBody: `b-delayed-${hex}`, delaySeconds: '86400' }), 'delayed send');
  const received = await must(cmqCall(fx, B, 'BatchReceiveMessage', { queueName: bq.held, numOfMsg: '6' }), 'receive');
  const handles = received.msgInfoList.map((m) => m.receiptHandle);
  if (handles.length !== 6) throw new Error(`set-up: received ${handles.length} of 6`);
  const publishedBody = `b-published-${hex}`;
  const published = await must(cmqCall(fx, B, 'PublishMessage', { topicName: bt, msgBody: publishedBody }), 'publish');

  const consoleA = await must(apiCall(billingUrl, 'POST', '/console/api/session', { body: { secretId: A.secretId, secretKey: A.secretKey } }), 'console sign-in');
  Object.assign(fx, {
    startedAt,
    A: { accountId: accA.id, key: A, disabledKey: { secretId: disabled.secretId, secretKey: disabled.secretKey }, deletedKey: { secretId: deleted.secretId, secretKey: deleted.secretKey }, console: consoleA.token, queues: aq, topics: at, delayedMsgId: delayed.msgId },
    B: { accountId: accB.id, appId: accB.appId, name: accB.name, key: B, queues: bq, topic: bt, sub: bs, bodies, msgIds, handles, delayedMsgId: bDelayed.msgId, publishedBody, publishedMsgId: published.msgId },
  });
  // what no answer may show unless the request itself carried it
  fx.secrets = [
    ["B's SecretKey", B.secretKey], ["B's SecretId", B.secretId], ["A's SecretKey", A.secretKey], ['the admin token', tokens.admin], ['the ops token', tokens.ops], ['the finance token', tokens.finance],
    ["A's console token", consoleA.token], ["B's account name", accB.name], ["B's account id", accB.id], ["B's queue name", bq.held], ["B's queue name", bq.sub], ["B's topic name", bt], ["B's subscription name", bs],
    ["B's published body", publishedBody], [`B's delayed body`, `b-delayed-${hex}`], ...bodies.map((b) => ["B's message body", b]), ...handles.map((h) => ["B's receipt handle", h]),
  ];
  fx.secretIds = new Set([...msgIds, bDelayed.msgId, published.msgId, String(accB.appId)]);
  return fx;
}

// ---------------------------------------------------------------- what is stored, before and after

const quote = (t) => `"${t.replace(/"/g, '""')}"`;

/**
 * Every table's row count and a digest of its rows, but the usage outbox (checked row by row:
 * billing.md §1 meters every authenticated request) and the messages and counters of A's replay
 * queue (the first copy of a replayed send is stored; checked on its own).
 */
async function snapshot(db, fx, outboxMax) {
  const { rows: q } = await db.query(`SELECT id::text FROM queues WHERE account_id = $1 AND name = $2 AND deleted_at IS NULL`, [fx.A.accountId, fx.A.queues.replay]);
  const replayId = q[0].id;
  const { rows: tables } = await db.query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`);
  const out = {};
  for (const { tablename: t } of tables) {
    if (t === 'usage_outbox') continue;
    const where = t === 'messages' || t === 'queue_counters' ? `WHERE queue_id::text <> $1` : '';
    const { rows } = await db.query(
      `SELECT count(*)::int AS n, md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) AS h FROM ${quote(t)} x ${where}`,
      where ? [replayId] : [],
    );
    out[t] = rows[0];
  }
  // the outbox rows from before the campaign stay as they were; the ones after are its usage
  const { rows: ob } = await db.query(`SELECT coalesce(max(id), 0)::text AS max FROM usage_outbox`);
  const max = outboxMax ?? ob[0].max;
  out.usage_outbox_before = { max };
  const { rows: obh } = await db.query(`SELECT count(*)::int AS n, md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x.id), '')) AS h FROM usage_outbox x WHERE id <= $1`, [max]);
  out.usage_outbox_old = obh[0];
  return { tables: out, replayId };
}

function diffSnapshots(before, after) {
  const changed = [];
  for (const t of new Set([...Object.keys(before.tables), ...Object.keys(after.tables)])) {
    if (t === 'usage_outbox_before') continue;
    const a = before.tables[t];
    const b = after.tables[t];
    if (!a || !b || a.n !== b.n || a.h !== b.h) changed.push({ table: t, before: a, after: b });
  }
  return changed;
}

/** The usage rows the campaign wrote (outbox rows after the snapshot), summed like the expectation. */
async function campaignUsage(db, before, fx) {
  const { rows } = await db.query(`SELECT records FROM usage_outbox WHERE id > $1 ORDER BY id`, [before.tables.usage_outbox_before.max]);
  const got = {};
  const foreign = [];
  for (const { records } of rows) {
    const recs = typeof records === 'string' ? JSON.parse(records) : records;
    for (const [account, region, resource, action, outcome, , calls, messages, bytesIn, bytesOut, sizeBands, per64k] of recs) {
      if (account !== fx.A.accountId || region !== 'gz') {
        foreign.push({ account, region, resource, action, outcome, calls });
        continue;
      }
      const k = `${action}|${outcome}|${resource}`;
      const e = (got[k] ??= { calls: 0, messages: 0, bytesIn: 0, bytesOut: 0, sizeBands: 0, per64k: 0 });
      e.calls += calls;
      e.messages += messages;
      e.bytesIn += bytesIn;
      e.bytesOut += bytesOut;
      e.sizeBands += sizeBands;
      e.per64k += per64k;
    }
  }
  return { got, foreign };
}

function compareUsage(expected, got) {
  const diffs = [];
  for (const k of new Set([...Object.keys(expected), ...Object.keys(got)])) {
    const e = expected[k] || { calls: 0, messages: 0, bytesIn: 0, bytesOut: 0, sizeBands: 0, per64k: 0 };
    const g = got[k] || { calls: 0, messages: 0, bytesIn: 0, bytesOut: 0, sizeBands: 0, per64k: 0 };
    for (const f of ['calls', 'messages', 'bytesIn', 'bytesOut', 'sizeBands', 'per64k']) {
      if (e[f] !== g[f]) diffs.push(`${k} ${f}: metered ${g[f]}, expected ${e[f]}`);
    }
  }
  return diffs;
}

/**
 * After the campaign: the stored state is the state before (but what billing.md meters and the
 * replayed sends' first copies), the usage is exactly that of the authenticated requests, B's
 * messages are all there and receivable with their bodies, A's delayed message too.
 */
async function verifyAfter(db, fx, before, run) {
  const failures = [];
  const after = await snapshot(db, fx, before.tables.usage_outbox_before.max);
  const changed = diffSnapshots(before, after);
  for (const c of changed) failures.push(`stored: table ${c.table} changed (rows ${c.before?.n} → ${c.after?.n})`);

  // the replay queue holds exactly the first copy of each replayed send
  const { rows: replayRows } = await db.query(`SELECT convert_from(body, 'UTF8') AS body FROM messages WHERE queue_id::text = $1`, [before.replayId]);
  const storedBodies = replayRows.map((r) => r.body).sort();
  const expectedBodies = [...run.stored].sort();
  if (JSON.stringify(storedBodies) !== JSON.stringify(expectedBodies)) {
    failures.push(`replay queue: ${storedBodies.length} messages stored, expected exactly the ${expectedBodies.length} first copies`);
  }

  // usage: exactly one row's worth per authenticated request, all A's
  const { got, foreign } = await campaignUsage(db, before, fx);
  for (const f of foreign) failures.push(`usage metered to another account or region: ${JSON.stringify(f)}`);
  const usageDiffs = compareUsage(run.expectedUsage, got);
  for (const d of usageDiffs.slice(0, 20)) failures.push(`usage: ${d}`);
  if (usageDiffs.length > 20) failures.push(`usage: … ${usageDiffs.length - 20} more differences`);

  // B's messages: all there, all receivable with their bodies (rewind makes the held ones visible)
  const B = fx.B.key;
  const attrs = await cmqCall(fx, B, 'GetQueueAttributes', { queueName: fx.B.queues.held });
  if (attrs.code !== 0 || attrs.delayMsgNum !== 1 || attrs.inactiveMsgNum !== 6 || attrs.activeMsgNum !== 6) {
    failures.push(`B's queue before rewinding: ${JSON.stringify({ code: attrs.code, active: attrs.activeMsgNum, inactive: attrs.inactiveMsgNum, delayed: attrs.delayMsgNum })}, expected 6 visible, 6 in flight, 1 delayed`);
  }
  const rewound = await cmqCall(fx, B, 'RewindQueue', { queueName: fx.B.queues.held, startConsumeTime: String(fx.startedAt - 1) });
  if (rewound.code !== 0) failures.push(`B's rewind: ${JSON.stringify(rewound)}`);
  const got12 = [];
  for (let i = 0; i < 4 && got12.length < 12; i++) {
    const r = await cmqCall(fx, B, 'BatchReceiveMessage', { queueName: fx.B.queues.held, numOfMsg: '16', pollingWaitSeconds: '1' });
    if (r.code === 0) got12.push(...r.msgInfoList);
  }
  const gotPairs = got12.map((m) => `${m.msgId}:${m.msgBody}`).sort();
  const wantPairs = fx.B.msgIds.map((id, i) => `${id}:${fx.B.bodies[i]}`).sort();
  if (JSON.stringify(gotPairs) !== JSON.stringify(wantPairs)) failures.push(`B's messages after rewinding: got ${gotPairs.length} (${gotPairs.slice(0, 3).join(', ')}…), expected the 12 sent`);
  const copy = await cmqCall(fx, B, 'ReceiveMessage', { queueName: fx.B.queues.sub, pollingWaitSeconds: '1' });
  if (copy.code !== 0 || copy.msgBody !== fx.B.publishedBody) failures.push(`B's subscribed queue: ${JSON.stringify({ code: copy.code, msgBody: copy.msgBody })}, expected the published message`);
  const aDelay = await cmqCall(fx, fx.A.key, 'GetQueueAttributes', { queueName: fx.A.queues.delay });
  if (aDelay.code !== 0 || aDelay.delayMsgNum !== 1) failures.push(`A's delayed message: ${JSON.stringify({ code: aDelay.code, delayed: aDelay.delayMsgNum })}, expected still there`);
  return { failures, changedTables: changed.map((c) => c.table), usage: { expected: run.expectedUsage, got } };
}

/** Sum of the expected usage: calls metered, and how many requests were refused before authentication. */
function usageTotals(expected) {
  let calls = 0;
  for (const v of Object.values(expected)) calls += v.calls;
  return calls;
}

/** The compact table of a run, one row per category, then the global checks. */
function summaryTable(report) {
  const lines = [];
  const pad = (s, n) => String(s).padEnd(n);
  const padl = (s, n) => String(s).padStart(n);
  lines.push(`${pad('category', 14)}${padl('sent', 8)}${padl('CMQ', 8)}${padl('API', 8)}${padl('matched', 9)}${padl('mismatch', 10)}`);
  for (const cat of CATEGORIES) {
    const t = report.tallies[cat];
    lines.push(`${pad(cat, 14)}${padl(t.sent, 8)}${padl(t.cmq, 8)}${padl(t.api, 8)}${padl(t.matched, 9)}${padl(t.mismatched, 10)}`);
  }
  const tot = CATEGORIES.reduce((a, c) => ({ sent: a.sent + report.tallies[c].sent, cmq: a.cmq + report.tallies[c].cmq, api: a.api + report.tallies[c].api, matched: a.matched + report.tallies[c].matched, mismatched: a.mismatched + report.tallies[c].mismatched }), { sent: 0, cmq: 0, api: 0, matched: 0, mismatched: 0 });
  lines.push(`${pad('total', 14)}${padl(tot.sent, 8)}${padl(tot.cmq, 8)}${padl(tot.api, 8)}${padl(tot.matched, 9)}${padl(tot.mismatched, 10)}`);
  return lines.join('\n');
}

/**
 * The whole campaign against running apps: fixtures, snapshot, cases, checks after. `db` is a pg
 * Pool or Client on the apps' database. Returns the report; `report.ok` is the verdict.
 */
async function runCampaign({ cmqPort, billingPort, tokens, limits, db, seed, count, concurrency, tag, log = () => undefined }) {
  const t0 = Date.now();
  const fx = await setupFixtures({ cmqPort, billingPort, tokens, limits, tag });
  const before = await snapshot(db, fx);
  const cases = buildCases(fx, { seed, count });
  log(`${cases.length} cases, ${cases.reduce((n, c) => n + c.make.length, 0)} requests (seed ${seed})`);
  const tRun = Date.now();
  let lastLog = 0;
  const run = await runCases(fx, cases, {
    concurrency,
    onProgress: (n) => {
      if (Date.now() - lastLog > 10000) {
        lastLog = Date.now();
        log(`  ${n} requests answered`);
      }
    },
  });
  const sendMs = Date.now() - tRun;
  const after = await verifyAfter(db, fx, before, run);
  const failures = [];
  if (run.global.fiveXX) failures.push(`${run.global.fiveXX} answers with a 5xx status`);
  if (run.global.code6000) failures.push(`${run.global.code6000} CMQ answers with code 6000`);
  if (run.global.leaks) failures.push(`${run.global.leaks} answers leaked another tenant's data or a secret`);
  if (run.global.hygiene) failures.push(`${run.global.hygiene} answers showed a stack trace, SQL, a file path or an error class`);
  const mism = CATEGORIES.reduce((n, c) => n + run.tallies[c].mismatched, 0);
  if (mism) failures.push(`${mism} answers differ from the documented ones`);
  failures.push(...after.failures);
  return {
    ok: failures.length === 0 && run.sent >= count,
    seed,
    count,
    sent: run.sent,
    cases: cases.length,
    concurrency,
    durationMs: Date.now() - t0,
    sendMs,
    tallies: run.tallies,
    byTemplate: run.byTemplate,
    global: run.global,
    meteredCalls: usageTotals(run.expectedUsage),
    replayedSendsStored: run.stored.length,
    changedTables: after.changedTables,
    failures,
    mismatches: run.mismatches,
  };
}

module.exports = { runCampaign, buildCases, setupFixtures, snapshot, verifyAfter, runCases, summaryTable, judge, inspectAnswer, CATEGORIES, Rng, sourceString, E };
