import { SetMetadata } from '@nestjs/common';

export const PUBLIC_KEY = 'cmq:public';

/** A route the internal API answers without a bearer token (health checks). */
export const Public = () => SetMetadata(PUBLIC_KEY, true);
