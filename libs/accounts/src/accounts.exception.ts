export enum AccountsExceptionCode {
  ACCOUNT_NOT_FOUND = 'ACCOUNT_NOT_FOUND',
  KEY_NOT_FOUND = 'KEY_NOT_FOUND',
  UNKNOWN_REGION = 'UNKNOWN_REGION',
}

export class AccountsException extends Error {
  constructor(
    readonly code: AccountsExceptionCode,
    message: string,
  ) {
    super(message);
    this.name = 'AccountsException';
  }
}
