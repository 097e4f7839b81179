import { INestApplication } from '@nestjs/common';
import { METHOD_METADATA } from '@nestjs/common/constants';
import { ModulesContainer, Reflector } from '@nestjs/core';
import { ApiParam, ApiProperty, ApiPropertyOptional, DocumentBuilder, getSchemaPath, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import type { OperationObject, ParameterObject, ResponseObject } from '@nestjs/swagger/dist/interfaces/open-api-spec.interface';
import { PUBLIC_KEY } from '@app/common';
import { PROBLEM_CONTENT_TYPE, type Problem as ProblemBody } from './api-exception.filter';
import { Role, ROLES, ROLES_KEY } from './auth/roles';

/** The body of every error answer (RFC 9457 problem details), as {@link ApiExceptionFilter} writes it. */
export class Problem implements ProblemBody {
  @ApiProperty({ example: 'about:blank', description: 'the kind of problem; about:blank: the status says it all' }) type: string;
  @ApiProperty({ example: 'Not Found', description: 'the phrase of the status' }) title: string;
  @ApiProperty({ type: 'integer', example: 404, description: 'the HTTP status' }) status: number;
  @ApiProperty({ example: 'account 0b5e3a52-8a4f-4c53-9d0e-6a1f3f2a7c10 does not exist', description: 'the reason, in words' }) detail: string;
  @ApiProperty({ example: '/v1/accounts/0b5e3a52-8a4f-4c53-9d0e-6a1f3f2a7c10', description: 'the path of the request' }) instance: string;
  @ApiPropertyOptional({ example: 'ACCOUNT_NOT_FOUND', description: 'the code of a domain error (ACCOUNT_NOT_FOUND, KEY_NOT_FOUND, UNKNOWN_REGION)' })
  code?: string;
  @ApiPropertyOptional({ type: [String], example: ['amount must be a decimal string such as "100.00" (at most 9 decimals)'], description: 'every reason, when a body or query fails its checks' })
  errors?: string[];
  @ApiPropertyOptional({ format: 'uuid', description: 'on a 500: the id of the error in the logs' }) errorId?: string;
}

const DESCRIPTION = `The operators' API of CMQ Cloud: accounts and access keys, money (top-ups, adjustments, balances, bills, usage, statements, price plans), SLA operations and reports, finance CSV exports, data rights and the audit trail.

**Authentication.** Every operation needs \`Authorization: Bearer <token>\`: \`ADMIN_TOKEN\` or one of \`API_TOKENS\` (\`name:role:token\`). Without a token, or with one that is not known, the answer is 401.

**Roles.** Each token has a role; a role that may not call an operation gets 403 (each operation's 403 response lists the roles that may call it, as does its \`x-allowed-roles\`):

| role | may |
|---|---|
| \`admin\` | everything |
| \`ops\` | every read; key disable/enable, queue QPS limits, top-ups and adjustments, SLA maintenance and attributions, SLA and bill month closes and recomputes, export jobs, release records |
| \`finance\` | every read (balances, ledger, usage, statements, bills, SLA, audit, CSV downloads, audit verification) and export jobs; nothing that changes money or state |

**Errors** are \`application/problem+json\` (RFC 9457, the \`Problem\` schema): \`type\`, \`title\`, \`status\`, \`detail\`, \`instance\`, with \`errors\` (every reason) when a body or query fails several checks, \`code\` for a domain error and \`errorId\` on a 500.

**Conventions.** Listings are paged by opaque cursors: \`?cursor=&limit=\` in, \`{…, nextCursor}\` out, \`nextCursor\` null on the last page. Money is a decimal string, times are ISO 8601. A write may carry \`X-Operator\` (who does it, 1-128 printable ASCII; required on SLA writes, month closes and new plan versions): the audit trail records it, else the token's name.`;

const READS = new Set(['get', 'head']);
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const;

const problemContent = () => ({ [PROBLEM_CONTENT_TYPE]: { schema: { $ref: getSchemaPath(Problem) } } });

interface Handler {
  controller: Function;
  handler: Function;
}

/** Every route handler of the app, by `<controller class name>.<method name>`. */
function handlersOf(app: INestApplication): Map<string, Handler> {
  const found = new Map<string, Handler>();
  for (const module of app.get(ModulesContainer).values()) {
    for (const wrapper of module.controllers.values()) {
      const controller = wrapper.metatype as Function | null;
      if (!controller?.prototype) continue;
      for (const name of Object.getOwnPropertyNames(controller.prototype)) {
        const handler = Object.getOwnPropertyDescriptor(controller.prototype, name)?.value as unknown;
        if (typeof handler === 'function' && Reflect.getMetadata(METHOD_METADATA, handler) !== undefined) {
          found.set(`${controller.name}.${name}`, { controller, handler });
        }
      }
    }
  }
  return found;
}

/**
 * The roles that may call a handler, as {@link ApiTokenGuard} decides (null: public, no token
 * needed): admin always; the roles of @Roles; without it every role for a read, admin alone for
 * anything else.
 */
function allowedRoles(reflector: Reflector, h: Handler, method: string): Role[] | null {
  const targets = [h.handler, h.controller];
  if (reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets)) return null;
  const roles = reflector.getAllAndOverride<Role[] | undefined>(ROLES_KEY, targets);
  const allowed = roles ?? (READS.has(method) ? [...ROLES] : []);
  return ROLES.filter((r) => r === 'admin' || allowed.includes(r));
}

/**
 * Completes what the decorators leave out, from the same metadata the app runs on: the bearer
 * security and the 401 and 403 answers of every operation the guard protects (with the roles
 * that may call it), 400 where an operation takes parameters or a body (a malformed URL is one
 * too, whatever the route), 413 and 415 where it takes a body, 500 everywhere, and
 * the problem+json body (the Problem schema) of every error answer, those the handlers declare
 * (404, 409, 503) included.
 */
function completeDocument(doc: OpenAPIObject, handlerOf: (operationId: string) => Handler | undefined): OpenAPIObject {
  const reflector = new Reflector();
  for (const item of Object.values(doc.paths)) {
    for (const method of METHODS) {
      const op = item[method] as OperationObject | undefined;
      if (!op) continue;
      const h = op.operationId ? handlerOf(op.operationId) : undefined;
      // a handler not found (never expected) is documented as guarded, without its roles
      const roles = h ? allowedRoles(reflector, h, method) : undefined;
      const responses = op.responses as Record<string, ResponseObject>;
      const parameters = (op.parameters ?? []) as ParameterObject[];
      if (parameters.length > 0 || op.requestBody) {
        responses['400'] ??= {
          description: 'The request is not valid (a parameter, header or the body): `detail` says why, `errors` lists every reason when several checks fail.',
        };
      }
      if (op.requestBody) {
        responses['413'] ??= { description: 'The body is larger than 1 MiB.' };
        responses['415'] ??= { description: 'The Content-Type of the body is not supported: send application/json.' };
      }
      if (roles === null) {
        delete op.security;
      } else {
        op.security = [{ bearer: [] }];
        if (roles) (op as OperationObject & { 'x-allowed-roles'?: Role[] })['x-allowed-roles'] = roles;
        responses['401'] = {
          description: 'No bearer token, or one that is not known.',
          headers: { 'WWW-Authenticate': { description: 'always `Bearer`', schema: { type: 'string', example: 'Bearer' } } },
        };
        responses['403'] = {
          description: roles ? `The role of the token may not call this operation: only ${roles.join(', ')} may.` : 'The role of the token may not call this operation.',
        };
      }
      responses['500'] ??= { description: 'An unexpected error: `errorId` finds it in the logs.' };
      for (const [status, response] of Object.entries(responses)) {
        if (/^[45]\d\d$/.test(status)) response.content = problemContent();
      }
      op.responses = Object.fromEntries(Object.entries(responses).sort(([a], [b]) => a.localeCompare(b)));
    }
  }
  return doc;
}

/**
 * The OpenAPI document of the billing-api (served at /docs and /docs-json). Operation ids are
 * `<controller without "Controller">_<handler>`, unique as the handlers are.
 */
export function openApiDocument(app: INestApplication): OpenAPIObject {
  const handlers = handlersOf(app);
  const owners = new Map<string, Handler | undefined>();
  const config = new DocumentBuilder()
    .setTitle('CMQ Cloud internal billing API')
    .setDescription(DESCRIPTION)
    .setVersion('1')
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'opaque', description: 'ADMIN_TOKEN or a token of API_TOKENS' })
    .build();
  const doc = SwaggerModule.createDocument(app, config, {
    extraModels: [Problem],
    operationIdFactory: (controllerKey, methodKey) => {
      const id = `${controllerKey.replace(/Controller$/, '')}_${methodKey}`;
      owners.set(id, handlers.get(`${controllerKey}.${methodKey}`));
      return id;
    },
  });
  return completeDocument(doc, (id) => owners.get(id));
}

/** `{id}` of the routes under /v1/accounts/{id}: the account. */
export const ApiAccountIdParam = () =>
  ApiParam({ name: 'id', description: 'the account id (UUID)', format: 'uuid', example: '0b5e3a52-8a4f-4c53-9d0e-6a1f3f2a7c10' });

/** `{month}`: a month, YYYY-MM. */
export const ApiMonthParam = (description = 'the month, YYYY-MM') => ApiParam({ name: 'month', description, example: '2026-11' });
