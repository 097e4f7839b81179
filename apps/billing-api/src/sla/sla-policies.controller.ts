import { BadRequestException, Body, Controller, Get, Headers, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiProperty, ApiTags } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsInt, IsString, Matches, MaxLength, MinLength, ValidateNested } from 'class-validator';
import { PolicyRejectedError, SlaPolicies, SlaPolicy } from '@app/sla';
import { operator } from '../params';
import { ApiOperatorHeader } from '../auth/principal.decorator';
import { SlaPolicyView } from './sla.views';

export class CreditBandDto {
  @ApiProperty({ example: 999500, description: 'the band applies below this availability, in ppm' }) @IsInt() belowPpm: number;
  @ApiProperty({ example: 10, description: 'credit, percent of the month’s cash fee (capped at the fee)' }) @IsInt() creditPct: number;
}

export class CreatePolicyDto {
  @ApiProperty({ example: '2027-01-01', description: 'the first day of a month that has not begun' })
  @Matches(/^\d{4}-\d{2}-01$/, { message: 'effectiveFrom must be the first day of a month, YYYY-MM-01' })
  effectiveFrom: string;
  @ApiProperty({ example: 'Asia/Shanghai' }) @IsString() @MaxLength(64) timeZone: string;
  @ApiProperty({ example: 999500 }) @IsInt() targetPpm: number;
  @ApiProperty({ example: 5 }) @IsInt() minOutageMinutes: number;
  @ApiProperty({ example: 86400 }) @IsInt() noticePeriodSeconds: number;
  @ApiProperty({ example: 50 }) @IsInt() probeDownPct: number;
  @ApiProperty({ example: 5 }) @IsInt() errorRatioPct: number;
  @ApiProperty({ example: 20 }) @IsInt() errorMinRequests: number;
  @ApiProperty({ example: 990000 }) @IsInt() coverageAlertPpm: number;
  @ApiProperty({ example: 1440 }) @IsInt() coverageWindowMinutes: number;
  @ApiProperty({ type: [CreditBandDto] })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(10)
  @ValidateNested({ each: true })
  @Type(() => CreditBandDto)
  creditBands: CreditBandDto[];
  @ApiProperty({ example: 'contract renewal: credit bands of 2027' }) @IsString() @MinLength(1) @MaxLength(1000) reason: string;
}

/** The versions of the SLA policy (sla.md: every rule a field of a versioned policy). */
@ApiTags('sla')
@ApiBearerAuth()
@Controller('v1/sla/policies')
export class SlaPoliciesController {
  constructor(private readonly policies: SlaPolicies) {}

  @Get()
  @ApiOkResponse({ type: [SlaPolicyView], description: 'Every version of the SLA policy, oldest first.' })
  list(): Promise<SlaPolicy[]> {
    return this.policies.list();
  }

  @Post()
  @ApiOperatorHeader({ required: true, description: 'who adds the version (audited)' })
  @ApiCreatedResponse({ type: SlaPolicyView, description: 'The new version.' })
  async create(@Headers('x-operator') who: string | undefined, @Body() body: CreatePolicyDto): Promise<SlaPolicy> {
    const actor = operator(who);
    const { reason, ...policy } = body;
    try {
      return await this.policies.create(policy, actor, reason);
    } catch (err) {
      if (err instanceof PolicyRejectedError) throw new BadRequestException(err.message);
      throw err;
    }
  }
}
