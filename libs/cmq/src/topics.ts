import { CmqErrors } from './errors';
import { QUEUE_NAME_RE } from './limits';
import type { ParamReader } from './params';

/** Ranges and defaults of topics and subscriptions (spec §10, §6.3). */
export const TopicLimits = {
  maxMsgSize: { min: 1024, max: 1_048_576, default: 65_536 },
  /** fixed: a topic keeps what it could not push yet for one day */
  msgRetentionSeconds: 86_400,
  /** msgTag per message, filterTag and bindingKey per subscription */
  maxTags: 5,
  maxTagLength: 16,
  maxKeyBytes: 64,
  maxKeyDots: 15,
  maxEndpointLength: 500,
  /** messages per BatchPublishMessage */
  batch: 16,
} as const;

export const SubscriptionListLimits = { defaultLimit: 20, maxLimit: 100, maxOffset: 1000 } as const;

/** 1: tags (filterTag against msgTag); 2: routing keys (bindingKey patterns against routingKey). */
export type FilterType = 1 | 2;
export type SubscriptionProtocol = 'http' | 'queue';
export type NotifyStrategy = 'BACKOFF_RETRY' | 'EXPONENTIAL_DECAY_RETRY';
export type ContentFormat = 'JSON' | 'SIMPLIFIED';

export const NOTIFY_STRATEGIES: readonly NotifyStrategy[] = ['BACKOFF_RETRY', 'EXPONENTIAL_DECAY_RETRY'];
export const CONTENT_FORMATS: readonly ContentFormat[] = ['JSON', 'SIMPLIFIED'];

/** Topic and subscription names follow the queue name rule. */
export function assertTopicName(name: string): string {
  if (!QUEUE_NAME_RE.test(name)) throw CmqErrors.topicNameFormat();
  return name;
}

export function assertSubscriptionName(name: string): string {
  if (!QUEUE_NAME_RE.test(name)) throw CmqErrors.subscriptionNameFormat();
  return name;
}

/** Array parameters are read up to this many items, so a long list gets its own error, not 10370. */
const READ_AT_MOST = 64;

// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f]/;

/** A tag: 1–16 characters, no control characters (`name` says which parameter for 10350). */
function assertTag(name: string, tag: string): string {
  if (tag.length === 0 || [...tag].length > TopicLimits.maxTagLength || CONTROL_RE.test(tag)) throw CmqErrors.outOfRange(name);
  return tag;
}

/** A routing or binding key: at most 64 bytes and 15 dots, no control characters. */
export function assertKey(name: string, key: string): string {
  if (Buffer.byteLength(key, 'utf8') > TopicLimits.maxKeyBytes || CONTROL_RE.test(key)) throw CmqErrors.outOfRange(name);
  let dots = 0;
  for (let i = 0; i < key.length; i++) if (key.charCodeAt(i) === 46) dots++;
  if (dots > TopicLimits.maxKeyDots) throw CmqErrors.tooManyDelimiters();
  return key;
}

/** PublishMessage's `msgTag.n`: at most 5 (10720), each 1–16 characters; duplicates count once. */
export function readMsgTags(p: ParamReader): string[] {
  const tags = p.array('msgTag', READ_AT_MOST, false).map((t) => assertTag('msgTag', t));
  const unique = [...new Set(tags)];
  if (unique.length > TopicLimits.maxTags) throw CmqErrors.tooManyMsgTags();
  return unique;
}

/** Subscribe's `filterTag.n`: at most 5 (10670); undefined when not given. */
export function readFilterTags(p: ParamReader): string[] | undefined {
  const tags = p.array('filterTag', READ_AT_MOST, false);
  if (tags.length === 0) return undefined;
  const unique = [...new Set(tags.map((t) => assertTag('filterTag', t)))];
  if (unique.length > TopicLimits.maxTags) throw CmqErrors.tooManyFilterTags();
  return unique;
}

/** Subscribe's `bindingKey.n`: at most 5 (10680), each a non-empty key; undefined when not given. */
export function readBindingKeys(p: ParamReader): string[] | undefined {
  const keys = p.array('bindingKey', READ_AT_MOST, false);
  if (keys.length === 0) return undefined;
  const unique = [...new Set(keys.map((k) => assertKey('bindingKey', k)))];
  if (unique.some((k) => k.length === 0)) throw CmqErrors.outOfRange('bindingKey');
  if (unique.length > TopicLimits.maxTags) throw CmqErrors.tooManyBindingKeys();
  return unique;
}

/**
 * PublishMessage's `routingKey`. A topic with routing keys needs one (10700); a tag topic ignores
 * it (the Python SDK always sends one, possibly empty).
 */
export function readRoutingKey(p: ParamReader, filterType: FilterType): string | null {
  const raw = p.optionalString('routingKey');
  if (filterType === 1) {
    if (raw !== undefined) assertKey('routingKey', raw);
    return null;
  }
  if (raw === undefined || raw === '') throw CmqErrors.lackRoutingKey();
  return assertKey('routingKey', raw);
}

const REGEX_SPECIAL = /[.^$|?*+()[\]{}\\]/g;

/**
 * The regular expression (the same text serves Postgres and JavaScript) that a binding key is,
 * applied to `'.' + routingKey`: words are dot-separated; `*` is exactly one word, `#` zero or
 * more words, anything else is literal (RabbitMQ's topic matching). Each word takes its leading
 * dot with it, so `#` matching no word leaves no dot behind.
 */
export function bindingPattern(bindingKey: string): string {
  const parts = bindingKey.split('.').map((w) => {
    if (w === '#') return '(?:\\.[^.]*)*';
    if (w === '*') return '\\.[^.]*';
    return '\\.' + w.replace(REGEX_SPECIAL, '\\$&');
  });
  return '^' + parts.join('') + '$';
}

/** Whether `routingKey` matches `bindingKey` (see {@link bindingPattern}). */
export function routingMatches(bindingKey: string, routingKey: string): boolean {
  return new RegExp(bindingPattern(bindingKey)).test('.' + routingKey);
}

/**
 * Subscribe's endpoint. For protocol http: an `http://` or `https://` URL of at most 500
 * characters, without blanks (4510), credentials or a fragment (10630); for protocol queue: a
 * queue name.
 */
/**
 * IPv6 forms of the link-local 169.254.0.0/16 (IPv4-mapped, IPv4-compatible, NAT64, each as a URL
 * serializes it) and AWS's IPv6 metadata address.
 */
const METADATA_IPV6_RE = /^\[(?:::(?:ffff:)?|64:ff9b::)a9fe:[0-9a-f]{1,4}\]$|^\[fd00:ec2::254\]$/;

export function assertEndpoint(protocol: SubscriptionProtocol, endpoint: string): string {
  if (protocol === 'queue') {
    if (!QUEUE_NAME_RE.test(endpoint)) throw CmqErrors.endpointFormat();
    return endpoint;
  }
  if (/\s/.test(endpoint)) throw CmqErrors.endpointBlank();
  if (CONTROL_RE.test(endpoint)) throw CmqErrors.endpointFormat();
  if (endpoint.length > TopicLimits.maxEndpointLength) throw CmqErrors.outOfRange('endpoint');
  if (!/^https?:\/\//i.test(endpoint)) throw CmqErrors.endpointFormat();
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw CmqErrors.endpointFormat();
  }
  if (!url.hostname) throw CmqErrors.endpointFormat();
  if (url.username || url.password || url.hash) throw CmqErrors.illegalEndpoint();
  // the cloud's instance metadata service is never a customer's receiver, however its
  // address is written (a URL serializes IPv4 in dotted form and IPv6 compressed)
  if (/^169\.254\./.test(url.hostname) || METADATA_IPV6_RE.test(url.hostname)) throw CmqErrors.illegalEndpoint();
  return endpoint;
}

/** `protocol`, matched case-insensitively (the doc's examples are lower case). */
export function readProtocol(p: ParamReader): SubscriptionProtocol {
  const raw = p.string('protocol').toLowerCase();
  if (raw !== 'http' && raw !== 'queue') throw CmqErrors.undefinedProtocol();
  return raw;
}

export function readNotifyStrategy(p: ParamReader): NotifyStrategy | undefined {
  const raw = p.optionalString('notifyStrategy');
  if (raw === undefined) return undefined;
  const v = raw.toUpperCase() as NotifyStrategy;
  if (!NOTIFY_STRATEGIES.includes(v)) throw CmqErrors.undefinedNotifyStrategy();
  return v;
}

export function readContentFormat(p: ParamReader): ContentFormat | undefined {
  const raw = p.optionalString('notifyContentFormat');
  if (raw === undefined) return undefined;
  const v = raw.toUpperCase() as ContentFormat;
  if (!CONTENT_FORMATS.includes(v)) throw CmqErrors.undefinedContentFormat();
  return v;
}
