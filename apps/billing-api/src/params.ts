import { BadRequestException } from '@nestjs/common';
import { isMonth } from '@app/common';
import type { Principal } from './auth/api-token.guard';

const OPERATOR = /^[\x20-\x7e]{1,128}$/;

/** Who does an operator write: the X-Operator header, 1-128 printable ASCII characters. */
export function operator(header: string | undefined): string {
  if (header === undefined || header.trim() === '') throw new BadRequestException('the X-Operator header is required (who does this)');
  if (!OPERATOR.test(header)) throw new BadRequestException('X-Operator must be 1-128 printable ASCII characters');
  return header;
}

/** Who does an operator action: X-Operator when given (checked as {@link operator}), else the token's name. */
export function actorOf(caller: Principal, header: string | undefined): string {
  return header === undefined || header === '' ? caller.name : operator(header);
}

/** A month path parameter, YYYY-MM. */
export function monthParam(value: string): string {
  if (!isMonth(value)) throw new BadRequestException('month must be YYYY-MM');
  return value;
}
