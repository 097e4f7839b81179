import type { ValidationPipeOptions } from '@nestjs/common';

/** The options of the billing-api's ValidationPipe: every body is checked, unknown fields are refused. */
export const VALIDATION_PIPE_OPTIONS: ValidationPipeOptions = { whitelist: true, forbidNonWhitelisted: true, transform: true };
