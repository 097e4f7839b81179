import { BadRequestException } from '@nestjs/common';
import { isMonth } from '@app/common';

const OPERATOR = /^[\x20-\x7e]{1,128}$/;

/** Who does an operator write: the X-Operator header, 1-128 printable ASCII characters. */
export function operator(header: string | undefined): string {
  if (header === undefined || header.trim() === '') throw new BadRequestException('the X-Operator header is required (who does this)');
  if (!OPERATOR.test(header)) throw new BadRequestException('X-Operator must be 1-128 printable ASCII characters');
  return header;
}

/** A month path parameter, YYYY-MM. */
export function monthParam(value: string): string {
  if (!isMonth(value)) throw new BadRequestException('month must be YYYY-MM');
  return value;
}
