import { Body, Controller, Delete, ForbiddenException, Get, Headers, HttpCode, Inject, Post, UnauthorizedException } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { IsObject, IsOptional, IsString, Length, Matches } from 'class-validator';
import { Agent } from 'node:http';
import { CredentialStore } from '@app/accounts';
import { CmqClient, CmqValue } from '@app/cmq';
import { Public } from '@app/common';
import { APP_CONFIG, AppConfig } from '@app/config';
import type { Principal } from '../auth/api-token.guard';
import { Caller } from '../auth/principal.decorator';
import { AccountAccess, Roles } from '../auth/roles';
import { ConsoleSessions } from './console-sessions';

export class SignInDto {
  @IsString()
  @Matches(/^AKID[A-Za-z0-9]{1,60}$/, { message: 'secretId must be a SecretId (AKID…)' })
  secretId: string;

  @IsString()
  @Length(1, 256)
  secretKey: string;
}

export class CmqCallDto {
  @IsString()
  @Matches(/^[A-Za-z]{1,64}$/, { message: 'action must be a CMQ action name' })
  action: string;

  @IsOptional()
  @IsObject()
  params?: Record<string, unknown>;
}

/** The CMQ actions the console's queue and topic pages make. */
const CONSOLE_ACTIONS = new Set(
  [
    'CreateQueue', 'ListQueue', 'GetQueueAttributes', 'SetQueueAttributes', 'DeleteQueue', 'SendMessage', 'ReceiveMessage',
    'BatchReceiveMessage', 'DeleteMessage', 'BatchDeleteMessage', 'RewindQueue', 'UnbindDeadLetterQueue', 'ListDeadLetterSourceQueues',
    'CreateTopic', 'SetTopicAttributes', 'GetTopicAttributes', 'DeleteTopic', 'ListTopic', 'PublishMessage', 'Subscribe',
    'Unsubscribe', 'SetSubscriptionAttributes', 'GetSubscriptionAttributes', 'ListSubscriptionByTopic', 'ClearSubscriptionFilterTags',
  ].map((a) => a.toLowerCase()),
);

/** A console page's parameter values: strings, numbers, or lists of them (`name.n`). */
function cmqParams(given: Record<string, unknown> | undefined): Record<string, CmqValue> {
  const out: Record<string, CmqValue> = {};
  for (const [k, v] of Object.entries(given ?? {})) {
    if (!/^[A-Za-z][A-Za-z0-9]{0,63}$/.test(k) || ['action', 'secretid', 'signature', 'timestamp', 'nonce'].includes(k.toLowerCase())) {
      throw new ForbiddenException(`parameter ${k.slice(0, 64)} is not the console's to send`);
    }
    if (typeof v === 'string' || typeof v === 'number') out[k] = v;
    else if (Array.isArray(v) && v.length <= 16 && v.every((x) => typeof x === 'string' || typeof x === 'number')) out[k] = v as Array<string | number>;
    else throw new ForbiddenException(`parameter ${k} must be a string, a number or a list of them`);
  }
  return out;
}

/**
 * The web console's own routes (not part of the documented internal API): sign-in with an
 * access key pair, who is signed in, sign-out, and the CMQ calls of its queue and topic pages.
 * Those are made as the signed-in key, signed like any SDK's, to this deployment's CMQ endpoint,
 * so the console passes every check (signature, tenancy, suspension, QPS, metering, audit) that
 * any other client does.
 */
@ApiExcludeController()
@Controller('console/api')
export class ConsoleController {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 32 });

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly sessions: ConsoleSessions,
    private readonly credentials: CredentialStore,
  ) {}

  @Public()
  @Post('session')
  async signIn(@Body() dto: SignInDto) {
    const opened = await this.sessions.open(dto.secretId, dto.secretKey);
    if (!opened) throw new UnauthorizedException('the SecretId and SecretKey do not sign in (unknown, disabled, or not matching)');
    return { token: opened.token, kind: 'account', ...opened.session };
  }

  /** Who the bearer is: an account sign-in, or an operator token and its role. */
  @AccountAccess({ param: null })
  @Get('session')
  whoAmI(@Caller() caller: Principal) {
    return caller.role === 'account'
      ? { kind: 'account', accountId: caller.accountId, secretId: caller.name }
      : { kind: 'operator', name: caller.name, role: caller.role };
  }

  @AccountAccess({ param: null })
  @Roles('ops', 'finance')
  @Delete('session')
  @HttpCode(204)
  async signOut(@Caller() caller: Principal, @Headers('authorization') auth: string): Promise<void> {
    if (caller.role === 'account') await this.sessions.close(auth.replace(/^Bearer\s+/i, ''));
  }

  /** One CMQ call as the signed-in key; the CMQ reply as it came (its `code` says how it went). */
  @AccountAccess({ param: null })
  @Post('cmq')
  @HttpCode(200)
  async cmq(@Caller() caller: Principal, @Body() dto: CmqCallDto) {
    if (caller.role !== 'account') throw new ForbiddenException('CMQ calls need an account sign-in');
    if (!CONSOLE_ACTIONS.has(dto.action.toLowerCase())) throw new ForbiddenException(`the console does not make ${dto.action}`);
    const params = cmqParams(dto.params);
    const credential = await this.credentials.resolve(caller.name);
    if (!credential || credential.keyStatus !== 'enabled') throw new UnauthorizedException('the signed-in key is no longer enabled');
    const client = new CmqClient({
      endpoint: this.config.console.cmqEndpoint,
      secretId: credential.secretId,
      secretKey: credential.secretKey,
      signatureMethod: 'HmacSHA256',
      agent: this.agent,
    });
    return client.call(dto.action, params);
  }
}
