import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Max, Min } from 'class-validator';

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
