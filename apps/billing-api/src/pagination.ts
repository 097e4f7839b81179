import { BadRequestException } from '@nestjs/common';
import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsISO8601, IsOptional, IsString, Max, Min } from 'class-validator';

/** `?limit=` of the listings (1-100, default 20). */
export class PageLimitQuery {
  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: 100, default: 20, example: 20, description: 'items per page, 1-100' })
  @IsOptional()
  @Type(() => Number)
  @IsInt({ message: 'limit must be an integer from 1 to 100' })
  @Min(1, { message: 'limit must be an integer from 1 to 100' })
  @Max(100, { message: 'limit must be an integer from 1 to 100' })
  limit?: number;
}

/** `?cursor=&limit=` of the listings paged by cursor (see cursor.ts); each listing adds its own filters. */
export class CursorPageQuery extends PageLimitQuery {
  @ApiPropertyOptional({ description: 'the nextCursor of the page before', example: 'WyJsZWRnZXIiLCIxMjM0Il0' })
  @IsOptional()
  @IsString({ message: 'cursor must be given once' })
  cursor?: string;
}

/** A cursor page of what happened in [from, to) (either may be left out). */
export class TimeRangePageQuery extends CursorPageQuery {
  @ApiPropertyOptional({ description: 'at or after (ISO 8601)', example: '2026-11-01T00:00:00+08:00' })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'from must be an ISO 8601 time' })
  from?: string;

  @ApiPropertyOptional({ description: 'before (ISO 8601)', example: '2026-12-01T00:00:00+08:00' })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'to must be an ISO 8601 time' })
  to?: string;
}

/** The range of a {@link TimeRangePageQuery} as instants; 400 unless from is before to. */
export function timeRange(q: { from?: string; to?: string }): { from: Date | null; to: Date | null } {
  const from = q.from ? new Date(q.from) : null;
  const to = q.to ? new Date(q.to) : null;
  if (from && to && from >= to) throw new BadRequestException('from must be before to');
  return { from, to };
}
