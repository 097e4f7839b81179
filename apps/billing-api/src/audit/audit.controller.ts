import { Body, Controller, Get, Headers, HttpCode, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiProperty, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { IsNotEmpty, IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import { AuditTrail } from '@app/audit';
import { ApiOperatorHeader, Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/api-token.guard';
import { Roles } from '../auth/roles';
import { actorOf } from '../params';
import { AuditEntryView, AuditListQuery, AuditPage, auditPage } from './audit.views';

export class AuditBreakView {
  @ApiProperty({ description: 'the chain that breaks' }) chain: number;
  @ApiProperty({ description: 'the entry of that chain where it breaks' }) seq: string;
  @ApiProperty({ enum: ['hash', 'link', 'gap', 'head'], description: 'hash: the entry was changed; link: it does not carry the hash before; gap: entries are missing; head: entries were cut off the end' })
  problem: string;
  @ApiProperty() detail: string;
}

export class ChainHeadView {
  @ApiProperty() chain: number;
  @ApiProperty({ description: 'the number of its last entry' }) seq: string;
  @ApiProperty({ description: 'the hash of its last entry (hex)' }) hash: string;
}

export class AuditVerificationView {
  @ApiProperty({ description: 'true: every entry is as it was written, none missing, none added between' }) ok: boolean;
  @ApiProperty({ description: 'entries checked' }) entries: number;
  @ApiProperty({ type: [ChainHeadView], description: 'every chain’s head as stored' }) heads: ChainHeadView[];
  @ApiProperty({ type: AuditBreakView, nullable: true }) firstBreak: AuditBreakView | null;
  @ApiProperty() checkedAt: string;
}

export class RecordReleaseDto {
  @ApiProperty({ example: '2026.12.1', description: 'the version deployed' })
  @IsString()
  @Matches(/^[\x21-\x7e]{1,64}$/, { message: 'version must be 1-64 printable ASCII characters without spaces' })
  version: string;

  @ApiProperty({ example: 'queue-api and worker: group commit tuning', maxLength: 2000 })
  @IsString()
  @IsNotEmpty({ message: 'description is required' })
  @MaxLength(2000)
  description: string;

  @ApiPropertyOptional({ example: ['queue-api', 'worker'], description: 'components deployed' })
  @IsOptional()
  @IsString({ each: true })
  @Matches(/^[a-z][a-z0-9-]{0,31}$/, { each: true, message: 'each component must be a component name such as queue-api' })
  components?: string[];
}

/**
 * The audit trail (append-only, hash-chained): every recorded user operation, operator action
 * and component event, filtered and paged; its verification; and the record of releases.
 */
@ApiTags('audit')
@ApiBearerAuth()
@Controller('v1/audit')
export class AuditController {
  constructor(private readonly trail: AuditTrail) {}

  @Get()
  @ApiOkResponse({ type: AuditPage, description: 'A page of the trail, newest first, by the filters given.' })
  list(@Query() q: AuditListQuery): Promise<AuditPage> {
    return auditPage(this.trail, q);
  }

  /** Walks every chain: every hash recomputed, every link, sequence number and head checked. */
  @Get('verify')
  @ApiOkResponse({ type: AuditVerificationView, description: 'What the walk found: ok, or where the chain first breaks.' })
  async verify(): Promise<AuditVerificationView> {
    const v = await this.trail.verify();
    return { ...v, checkedAt: v.checkedAt.toISOString() };
  }

  /** A deployment of ours, recorded as an operator action (what regulators ask of changes to the service). */
  @Roles('ops')
  @Post('releases')
  @HttpCode(201)
  @ApiOperatorHeader({ description: 'who deployed (default: the token’s name)' })
  @ApiCreatedResponse({ type: AuditEntryView, description: 'The entry recorded.' })
  async release(@Caller() caller: Principal, @Headers('x-operator') who: string | undefined, @Body() dto: RecordReleaseDto): Promise<AuditEntryView> {
    const [entry] = await this.trail.append({
      domain: 'system',
      action: 'release.deploy',
      actorKind: 'operator',
      actor: actorOf(caller, who),
      subject: `release:${dto.version}`,
      reason: dto.description,
      details: { version: dto.version, components: dto.components ?? [] },
    });
    return AuditEntryView.of(entry);
  }
}
