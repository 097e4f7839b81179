import { Body, Controller, Headers, NotFoundException, Param, ParseUUIDPipe, Put } from '@nestjs/common';
import { ApiBearerAuth, ApiNotFoundResponse, ApiOkResponse, ApiParam, ApiProperty, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { IsInt, IsOptional, IsString, Matches, Max, Min, ValidateIf } from 'class-validator';
import { AccountsService } from '@app/accounts';
import { CmqError, QUEUE_NAME_RE } from '@app/cmq';
import { QpsThrottle, QueueService } from '@app/queues';
import { Roles } from '../auth/roles';
import { ApiOperatorHeader, Caller } from '../auth/principal.decorator';
import type { Principal } from '../auth/api-token.guard';
import { actorOf } from '../params';
import { ApiAccountIdParam } from '../openapi';

export class SetQpsLimitDto {
  @ApiProperty({ type: 'integer', nullable: true, example: 10000, description: "requests/s; null restores the deployment's QUEUE_QPS_LIMIT" })
  @ValidateIf((o: SetQpsLimitDto) => o.qpsLimit !== null)
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  qpsLimit: number | null;

  @ApiPropertyOptional({ example: 'gz', description: "the queue's region (default: the account's home region)" })
  @IsOptional()
  @IsString()
  @Matches(/^[a-z][a-z0-9-]{1,15}$/, { message: 'region must be a region code such as gz' })
  region?: string;
}

export class QpsLimitView {
  @ApiProperty() queueId: string;
  @ApiProperty() queueName: string;
  @ApiProperty() region: string;
  @ApiProperty({ type: 'integer', nullable: true, description: 'the per-queue setting; null means the default' }) qpsLimit: number | null;
  @ApiProperty({ description: 'the limit in force' }) effectiveQpsLimit: number;
}

/** Operator settings of a tenant's queues that CMQ itself does not expose. */
@ApiTags('queues')
@ApiBearerAuth()
@ApiAccountIdParam()
@Controller('v1/accounts/:id/queues')
export class QueueLimitsController {
  constructor(
    private readonly accounts: AccountsService,
    private readonly queues: QueueService,
    private readonly throttle: QpsThrottle,
  ) {}

  /** Sets one queue's requests/s cap; every queue-api process applies it at once. */
  @Roles('ops')
  @Put(':queueName/qps-limit')
  @ApiOperatorHeader({ description: 'who does it (recorded in the audit trail; default: the token’s name)' })
  @ApiParam({ name: 'queueName', description: 'the CMQ queue name', example: 'orders' })
  @ApiOkResponse({ type: QpsLimitView, description: 'The queue’s setting and the limit in force.' })
  @ApiNotFoundResponse({ description: 'No such account, or no such live queue of it in the region.' })
  async setQpsLimit(
    @Caller() caller: Principal,
    @Headers('x-operator') who: string | undefined,
    @Param('id', new ParseUUIDPipe()) id: string,
    @Param('queueName') queueName: string,
    @Body() dto: SetQpsLimitDto,
  ): Promise<QpsLimitView> {
    const by = { kind: 'operator' as const, name: actorOf(caller, who) };
    const account = await this.accounts.getAccount(id);
    const region = dto.region ?? account.region;
    if (!QUEUE_NAME_RE.test(queueName)) throw new NotFoundException(`queue ${queueName.slice(0, 64)} does not exist`);
    try {
      const q = await this.queues.setQpsLimit({ accountId: account.id, region }, queueName, dto.qpsLimit, by);
      return { queueId: q.queueId, queueName: q.name, region: q.region, qpsLimit: q.qpsLimit, effectiveQpsLimit: this.throttle.limitOf(q) };
    } catch (err) {
      if (err instanceof CmqError && err.code === 4440) throw new NotFoundException(`queue ${queueName} does not exist in ${region}`);
      throw err;
    }
  }
}
