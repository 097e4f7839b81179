import { BadRequestException, Body, Controller, Get, HttpCode, Inject, Param, ParseUUIDPipe, Put } from '@nestjs/common';
import { AccountAccess } from '../auth/roles';
import { ApiBearerAuth, ApiNotFoundResponse, ApiOkResponse, ApiParam, ApiProperty, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { IsNotEmpty, IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import { AccountsService } from '@app/accounts';
import { APP_CONFIG, AppConfig } from '@app/config';
import { NoPlanError, PlanAssignment, PlanCatalog } from '@app/billing';
import type { AuditActor } from '@app/audit';
import { ApiOperatorHeader, OperatorActor } from '../auth/principal.decorator';
import { ApiAccountIdParam } from '../openapi';

export class AssignPlanDto {
  @ApiProperty({ example: 'default', description: 'code of a price plan that covers the region' })
  @IsString()
  @Matches(/^[a-z0-9][a-z0-9_-]{0,63}$/, { message: 'plan must be a plan code (lower-case letters, digits, _ and -)' })
  plan: string;

  @ApiPropertyOptional({ example: 'contract 2026-118', maxLength: 500 })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  @MaxLength(500)
  reason?: string;
}

export class PlanAssignmentView {
  @ApiProperty() region: string;
  @ApiProperty() plan: string;
  @ApiProperty({ description: 'the start of the hour from which usage is rated by this plan' }) effectiveFrom: string;
  @ApiProperty({ type: 'string', nullable: true }) reason: string | null;
  @ApiProperty() assignedAt: string;

  static of(a: PlanAssignment): PlanAssignmentView {
    return {
      region: a.region,
      plan: a.plan,
      effectiveFrom: a.effectiveFrom.toISOString(),
      reason: a.reason,
      assignedAt: a.assignedAt.toISOString(),
    };
  }
}

/**
 * The price plan of an account per region (billing.md §2): a change takes effect from the next
 * hour; every change is kept as the audit trail.
 */
@ApiTags('billing')
@ApiBearerAuth()
@ApiAccountIdParam()
@Controller('v1/accounts/:id/plans')
export class AccountPlansController {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly accounts: AccountsService,
    private readonly plans: PlanCatalog,
  ) {}

  @Put(':region')
  @HttpCode(200)
  @ApiOperatorHeader()
  @ApiParam({ name: 'region', description: 'one of the deployment’s REGIONS (400 otherwise, or when no plan of that code covers it)', example: 'gz' })
  @ApiOkResponse({ type: PlanAssignmentView, description: 'The assignment: the plan rates the region’s usage from the next hour.' })
  @ApiNotFoundResponse({ description: 'No such account.' })
  async assign(
    @OperatorActor() by: AuditActor,
    @Param('id', new ParseUUIDPipe()) id: string,
    @Param('region') region: string,
    @Body() dto: AssignPlanDto,
  ): Promise<PlanAssignmentView> {
    if (!this.config.regions.includes(region)) throw new BadRequestException(`region ${region} is not served here`);
    await this.accounts.getAccount(id);
    try {
      return PlanAssignmentView.of(await this.plans.assign(id, region, dto.plan, dto.reason ?? null, by));
    } catch (err) {
      if (err instanceof NoPlanError) throw new BadRequestException(err.message);
      throw err;
    }
  }

  @AccountAccess()
  @Get()
  @ApiOkResponse({ type: [PlanAssignmentView], description: 'Every plan assignment of the account, newest first.' })
  @ApiNotFoundResponse({ description: 'No such account.' })
  async list(@Param('id', new ParseUUIDPipe()) id: string): Promise<PlanAssignmentView[]> {
    await this.accounts.getAccount(id);
    return (await this.plans.assignments(id)).map(PlanAssignmentView.of);
  }
}
