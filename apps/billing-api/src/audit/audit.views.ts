import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsUUID } from 'class-validator';
import { ACTOR_KINDS, ActorKind, AUDIT_DOMAINS, AuditDomain, AuditRecord, AuditTrail } from '@app/audit';
import { decodeCursor, pageOf } from '../cursor';
import { CursorPageQuery, timeRange, TimeRangePageQuery } from '../pagination';

export class AuditEntryView {
  @ApiProperty({ example: '52113', description: 'the entry’s id: the trail’s order (newest first in listings), as a string' }) id: string;
  @ApiProperty({ example: 14, description: 'the chain it is in (0-15): an account’s entries are all in one chain, entries of no account in chain 0' })
  chain: number;
  @ApiProperty({ example: '1042', description: 'place in its chain (1, 2, 3, …), as a string' }) seq: string;
  @ApiProperty({ example: '2026-11-20T08:00:00.000Z' }) at: string;
  @ApiProperty({ enum: AUDIT_DOMAINS }) domain: AuditDomain;
  @ApiProperty({ example: 'queue.create' }) action: string;
  @ApiProperty({ enum: ACTOR_KINDS, description: 'user: an account’s own request; operator: a person of ours; component: the system itself' })
  actorKind: ActorKind;
  @ApiProperty({ example: 'alice@ops', description: 'an operator’s name, a SecretId, a component' }) actor: string;
  @ApiProperty({ type: 'string', nullable: true, example: 'api:ops-on-call', description: 'the channel and credential: api:<token name>, cmq, worker' })
  via: string | null;
  @ApiProperty({ type: 'string', nullable: true }) accountId: string | null;
  @ApiProperty({ example: 'queue:gz/orders' }) subject: string;
  @ApiProperty({ type: 'string', nullable: true }) reason: string | null;
  @ApiProperty({ description: 'what the change was, as recorded' }) details: unknown;
  @ApiProperty({ description: 'SHA-256 of the entry before in its chain (hex); 64 zeros for the first' }) prevHash: string;
  @ApiProperty({ description: 'SHA-256 of prevHash and this entry (hex)' }) hash: string;

  static of(r: AuditRecord): AuditEntryView {
    return {
      id: r.id,
      chain: r.chain,
      seq: r.seq,
      at: r.at.toISOString(),
      domain: r.domain,
      action: r.action,
      actorKind: r.actorKind,
      actor: r.actor,
      via: r.via,
      accountId: r.accountId,
      subject: r.subject,
      reason: r.reason,
      details: r.details,
      prevHash: r.prevHash.toString('hex'),
      hash: r.hash.toString('hex'),
    };
  }
}

export class AuditPage {
  @ApiProperty({ type: [AuditEntryView], description: 'newest first' }) entries: AuditEntryView[];
  @ApiProperty({ type: 'string', nullable: true, description: 'pass as cursor= for the next page; null on the last' }) nextCursor: string | null;
}

export class AuditListQuery extends TimeRangePageQuery {
  @ApiPropertyOptional({ description: 'only this account’s entries', format: 'uuid', example: '0b5e3a52-8a4f-4c53-9d0e-6a1f3f2a7c10' })
  @IsOptional()
  @IsUUID('all', { message: 'accountId must be a UUID' })
  accountId?: string;

  @ApiPropertyOptional({ enum: AUDIT_DOMAINS, description: 'only entries of this domain', example: 'accounts' })
  @IsOptional()
  @IsIn(AUDIT_DOMAINS as readonly string[] as string[], { message: `domain must be one of ${AUDIT_DOMAINS.join(', ')}` })
  domain?: AuditDomain;

  @ApiPropertyOptional({ enum: ACTOR_KINDS, description: 'only entries of this kind of actor', example: 'operator' })
  @IsOptional()
  @IsIn(ACTOR_KINDS as readonly string[] as string[], { message: `actorKind must be one of ${ACTOR_KINDS.join(', ')}` })
  actorKind?: ActorKind;
}

const ID = /^[1-9]\d{0,18}$/;

/** A page of the trail, newest first, by the filters given (one shape for every audit listing). */
export async function auditPage(
  trail: AuditTrail,
  q: CursorPageQuery & { accountId?: string | null; domain?: AuditDomain; actorKind?: ActorKind; from?: string; to?: string },
): Promise<AuditPage> {
  const limit = q.limit ?? 20;
  const key = decodeCursor('audit', q.cursor, 1, ([id]) => typeof id === 'string' && ID.test(id));
  const { from, to } = timeRange(q);
  const rows = await trail.list({
    accountId: q.accountId ?? null,
    domain: q.domain ?? null,
    actorKind: q.actorKind ?? null,
    from,
    to,
    beforeId: key ? String(key[0]) : null,
    limit: limit + 1,
  });
  const { items, nextCursor } = pageOf(rows, limit, 'audit', (r) => [r.id]);
  return { entries: items.map(AuditEntryView.of), nextCursor };
}
