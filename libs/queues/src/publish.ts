import type { PoolClient } from 'pg';
import type { BatchWriter } from './group-commit';
import { counterUpsert } from './message-store';

export interface PublishOp {
  topicId: string;
  bodies: Buffer[];
  /** the messages' tags (tag topics); [] for none */
  tags: string[];
  /** the messages' routing key (routing topics); null for tag topics */
  routingKey: string | null;
  /** a publish no subscription matches is accepted (and stored nowhere) instead of refused */
  acceptUnmatched: boolean;
}

export type PublishResult =
  | {
      status: 'ok';
      /** the published messages' ids, in input order */
      msgIds: string[];
      /** queues that received copies, with how many (to wake their long polls) */
      queues: Array<[string, number]>;
      /** push_deliveries rows made (HTTP subscriptions, and queues that were full) */
      pushes: string[];
    }
  | { status: 'no_topic' | 'no_subscription' | 'no_match' };

/** Separates tags in the statement's text parameter (tags cannot hold control characters). */
const TAG_SEPARATOR = '\u001f';

/**
 * All publishes of a commit in one statement. For each publish: the live topic, its
 * subscriptions, and which of them match (tags overlapping the message's, or a binding pattern
 * matching its routing key), all read in the snapshot the statement writes in; then, for the
 * matching ones, a copy of each message in every live subscribed queue that has room (the
 * counters move with them) and a push_deliveries row for every HTTP subscription and every full
 * queue. A publish that stores nothing (topic gone, no subscription, nothing matches) reports why.
 */
const PUBLISH = {
  name: 'cmq-publish',
  text: `WITH input AS (
         SELECT u.topic_id, u.ord, u.body, u.tags, u.routing_key, u.pos
           FROM unnest($1::bigint[], $2::int[], $3::bytea[], $4::text[], $5::text[])
                WITH ORDINALITY AS u(topic_id, ord, body, tags, routing_key, pos)
       ), ops AS (
         SELECT ord, min(topic_id) AS topic_id, min(tags) AS tags_text, min(routing_key) AS routing_key, count(*) AS n
           FROM input GROUP BY ord
       ), topic AS (
         SELECT o.ord, o.topic_id, o.n, o.routing_key, t.account_id, t.region, t.filter_type,
                CASE WHEN o.tags_text = '' THEN '{}'::text[] ELSE string_to_array(o.tags_text, E'\\x1f') END AS tags,
                EXISTS (SELECT 1 FROM subscriptions s WHERE s.topic_id = t.id) AS has_subs
           FROM ops o JOIN topics t ON t.id = o.topic_id AND t.deleted_at IS NULL
       ), matched AS (
         SELECT t.ord, t.n, s.id AS sub_id, s.protocol, s.endpoint, t.account_id, t.region
           FROM topic t JOIN subscriptions s ON s.topic_id = t.topic_id
          WHERE CASE WHEN t.filter_type = 1 THEN cardinality(s.filter_tags) = 0 OR s.filter_tags && t.tags
                     ELSE ('.' || t.routing_key) ~ ANY (s.binding_patterns) END
       ), accepted AS (
         SELECT t.ord, t.tags FROM topic t
          WHERE t.has_subs AND ($6::boolean OR EXISTS (SELECT 1 FROM matched m WHERE m.ord = t.ord))
       ), targets AS (
         SELECT m.ord, m.sub_id, m.n, q.id AS queue_id, q.max_msg_heap_num
           FROM matched m
           JOIN queues q ON m.protocol = 'queue' AND q.account_id = m.account_id AND q.region = m.region
                        AND lower(q.name) = lower(m.endpoint) AND q.deleted_at IS NULL
       ), stored AS (
         SELECT c.queue_id, sum(c.msgs) AS msgs FROM queue_counters c
          WHERE c.queue_id IN (SELECT queue_id FROM targets) GROUP BY c.queue_id
       ), judged AS (
         SELECT t.ord, t.sub_id, t.n, t.queue_id,
                coalesce(s.msgs, 0) + sum(t.n) OVER (PARTITION BY t.queue_id ORDER BY t.ord, t.sub_id) <= t.max_msg_heap_num AS fits
           FROM targets t LEFT JOIN stored s ON s.queue_id = t.queue_id
       ), pub AS (
         SELECT i.ord, i.pos, i.body, a.tags, nextval('messages_msg_id_seq') AS msg_id
           FROM input i JOIN accepted a ON a.ord = i.ord
          ORDER BY i.pos
       ), copies AS (
         INSERT INTO messages (msg_id, queue_id, body, enqueue_ms, visible_ms) OVERRIDING SYSTEM VALUE
         SELECT nextval('messages_msg_id_seq'), j.queue_id, p.body, cmq_now_ms(), cmq_now_ms()
           FROM pub p JOIN judged j ON j.ord = p.ord AND j.fits
         RETURNING queue_id
       ), delta AS (
         SELECT queue_id, count(*) AS msgs, 0 AS rewind_msgs FROM copies GROUP BY queue_id
       ), cnt AS (
         ${counterUpsert('delta')}
       ), pushes AS (
         INSERT INTO push_deliveries (subscription_id, msg_id, body, tags, publish_ms, next_attempt_ms)
         SELECT m.sub_id, p.msg_id, p.body, p.tags, cmq_now_ms(), cmq_now_ms()
           FROM pub p JOIN matched m ON m.ord = p.ord
          WHERE m.protocol = 'http'
             OR EXISTS (SELECT 1 FROM judged j WHERE j.ord = m.ord AND j.sub_id = m.sub_id AND NOT j.fits)
         RETURNING id, msg_id
       )
       SELECT 'op' AS kind, o.ord,
              CASE WHEN t.ord IS NULL THEN 'no_topic' WHEN NOT t.has_subs THEN 'no_subscription'
                   WHEN a.ord IS NULL THEN 'no_match' ELSE 'ok' END AS a,
              NULL::bigint AS b, 0::bigint AS pos
         FROM ops o LEFT JOIN topic t ON t.ord = o.ord LEFT JOIN accepted a ON a.ord = o.ord
       UNION ALL SELECT 'msg', ord, msg_id::text, NULL, pos FROM pub
       UNION ALL SELECT 'queue', ord, queue_id::text, n, 0 FROM judged WHERE fits
       UNION ALL SELECT 'push', p.ord, x.id::text, NULL, 0 FROM pushes x JOIN pub p ON p.msg_id = x.msg_id`,
};

interface PublishRow {
  kind: 'op' | 'msg' | 'queue' | 'push';
  ord: number;
  a: string;
  b: string | null;
  pos: string;
}

/**
 * The publishes of a group commit: one statement for all of them, in the commit's transaction
 * (with the publishes' usage), so a publish that was answered is in every matching queue and
 * every matching HTTP subscription's push list, and one that failed is in none.
 */
export class PublishWriter implements BatchWriter<PublishOp, PublishResult> {
  readonly name = 'publish';

  async execute(client: PoolClient, ops: PublishOp[]): Promise<PublishResult[]> {
    const topicIds: string[] = [];
    const ords: number[] = [];
    const bodies: Buffer[] = [];
    const tags: string[] = [];
    const keys: Array<string | null> = [];
    ops.forEach((op, i) => {
      const joined = op.tags.join(TAG_SEPARATOR);
      for (const body of op.bodies) {
        topicIds.push(op.topicId);
        ords.push(i);
        bodies.push(body);
        tags.push(joined);
        keys.push(op.routingKey);
      }
    });
    // a batch's flag is the deployment's; every op carries the same
    const accept = ops.some((op) => op.acceptUnmatched);
    const { rows } = await client.query<PublishRow>({ ...PUBLISH, values: [topicIds, ords, bodies, tags, keys, accept] });
    const results: PublishResult[] = ops.map(() => ({ status: 'no_topic' }));
    const msgs = rows.filter((r) => r.kind === 'msg').sort((x, y) => Number(x.pos) - Number(y.pos));
    for (const r of rows) {
      if (r.kind === 'op' && r.a === 'ok') results[r.ord] = { status: 'ok', msgIds: [], queues: [], pushes: [] };
      else if (r.kind === 'op') results[r.ord] = { status: r.a as 'no_topic' | 'no_subscription' | 'no_match' };
    }
    for (const r of msgs) {
      const res = results[r.ord];
      if (res.status === 'ok') res.msgIds.push(r.a);
    }
    for (const r of rows) {
      const res = results[r.ord];
      if (res.status !== 'ok') continue;
      if (r.kind === 'queue') res.queues.push([r.a, Number(r.b)]);
      else if (r.kind === 'push') res.pushes.push(r.a);
    }
    return results;
  }

  /** Queues whose long polls the committed publish should wake. */
  woken(_op: PublishOp, result: PublishResult): Array<[string, number]> {
    return result.status === 'ok' ? result.queues : [];
  }
}
