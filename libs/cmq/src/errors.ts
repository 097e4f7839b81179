/**
 * CMQ error responses: top-level `code`, and a `message` of the form "(<module>)<text>".
 * The texts are the protocol's own (shared/spec/cmq-protocol.md §6), typos included,
 * because client code compares them verbatim.
 */
export class CmqError extends Error {
  constructor(
    readonly code: number,
    readonly module: number,
    readonly text: string,
    /** extra top-level response fields, e.g. BatchDeleteMessage's errorList */
    readonly fields?: Record<string, unknown>,
  ) {
    super(`(${module})${text}`);
    this.name = 'CmqError';
  }
}

export const CmqErrors = {
  // §6.1 common
  invalidParameters: () => new CmqError(4000, 10000, 'invalid request parameters'),
  parameterValue: () => new CmqError(4000, 10110, 'request parameters error'),
  keyFormat: (name: string) => new CmqError(4000, 10310, `error: parameter ${name} key format error`),
  notRepeatable: (name: string) => new CmqError(4000, 10330, `parameter ${name} is NOT a repeatable parameter`),
  outOfRange: (name: string) => new CmqError(4000, 10350, `parameter ${name} value or length is out of range`),
  errorType: (name: string) => new CmqError(4000, 10360, `parameter ${name} error type`),
  batchSize: (name: string) => new CmqError(4000, 10370, `${name} parameter batch size is out of range`),
  notConsecutive: (name: string) => new CmqError(4000, 10380, `${name} parameter is not consequent`),
  missing: (name: string) => new CmqError(4000, 10390, `lacked of required parameter ${name}`),
  method: (method: string) => new CmqError(4000, 10410, `unexpected http ${method} only GET or POST is supported`),
  cannotParse: (what: string) => new CmqError(4000, 10420, `cannot parse ${what}, or request size is more than 1MB`),
  unknownAction: (action: string) => new CmqError(4000, 10430, `action name ${action} is not existed`),
  authFailed: () => new CmqError(4100, 10030, 'authentication failed'),
  secretIdDisabled: () => new CmqError(4100, 10080, 'secret id status error'),
  secretIdUnknown: () => new CmqError(4100, 10270, 'secret id is not existed'),
  chargeOverdue: () => new CmqError(4300, 10040, 'charge overdue'),
  qpsThrottling: () => new CmqError(4420, 10250, 'qps throttling'),
  internal: () => new CmqError(6000, 10050, 'server internal error'),

  // §6.2 queues
  queueNotExist: () => new CmqError(4440, 10100, 'queue is not existed, or deleted'),
  queueExists: () => new CmqError(4460, 10210, 'queue is already existed'),
  queueNameFormat: () => new CmqError(4000, 10020, 'queue name format error'),
  emptyBody: () => new CmqError(4000, 10120, "message body can't be empty"),
  receiptHandleType: () => new CmqError(4000, 10470, 'receiptHandle error'),
  delayOutOfRange: () => new CmqError(4000, 10692, 'delay seconds is out of range'),
  messageTooBig: () => new CmqError(4400, 10230, 'exceed maximum message size'),
  heapFull: () => new CmqError(4410, 10240, 'reach maximum retention number of message'),
  receiptHandleInvalid: () => new CmqError(4430, 10260, 'receipt handle is invalid'),
  queueLimit: () => new CmqError(4450, 10220, 'number of queues has reached the limit'),
  batchTooBig: () => new CmqError(4470, 10300, 'total message size exceed 1MB'),
  noMessage: () => new CmqError(7000, 10200, 'no message'),
  queueNameCooldown: () =>
    new CmqError(
      6040,
      10660,
      'it will take some time to release resources of previous queue before you create a new one with the same name, please try later',
    ),
  rewindDisabled: () => new CmqError(6050, 10670, 'your queue cannot be rewinded'),
  rewindTime: () =>
    new CmqError(4000, 10680, 'invalid rewind time, you can get the vaild range of that via GetQueueAttributes'),
  rewindOverRetention: () => new CmqError(4000, 10700, 'rewindSeconds cannot be greater than msgRetentionSeconds'),

  // §6.2 dead-letter queues (§9)
  deadLetterNotJson: () => new CmqError(4000, 10710, 'deadLetterPolicy must be a json string'),
  deadLetterParams: () => new CmqError(4000, 10720, 'deadLetterPolicy params error,please check it'),
  deadLetterQueueMissing: () => new CmqError(4000, 10730, 'deadLetter queue not exist'),
  deadLetterNested: () => new CmqError(4000, 10740, 'deadLetter queue is not allowed to nest'),
  deadLetterInUse: () =>
    new CmqError(4000, 10750, 'it is not allowed to be deleted when the queue is dead letter queue'),
  deadLetterQueueMember: () =>
    new CmqError(4000, 10760, 'the deadLetterPolicy must has deadLetterQueue member, only be a string'),
  deadLetterPolicyMember: () =>
    new CmqError(4000, 10770, 'the deadLetterPolicy must has policy member , only set 0 or 1'),
  deadLetterBoundTooOften: () => new CmqError(4000, 10780, 'the deadLetter Queue bind too many times'),

  // §6.3 topics and subscriptions (§10). Module numbers are the table's; the table gives none for
  // an existing topic or a missing subscription, so those borrow the nearest (clients branch on `code`).
  topicNotExist: () => new CmqError(4440, 10600, 'topic is not existed, or deleted'),
  topicExists: () => new CmqError(4460, 10210, 'topic is already existed'),
  topicNameFormat: () => new CmqError(4000, 10590, 'topic name format error'),
  subscriptionNameFormat: () => new CmqError(4000, 10580, 'subscription name format error'),
  subscriptionNotExist: () => new CmqError(4440, 10600, 'subscription is not existed, or deleted'),
  topicHasSubscriptions: () =>
    new CmqError(4000, 10540, 'there exists subscriptions under this topic, please unsubscribe all of them before DeleteTopic'),
  tooManyFilterTags: () => new CmqError(4000, 10670, 'too many filterTag'),
  tooManyBindingKeys: () => new CmqError(4000, 10680, 'too many bindingKey'),
  endpointFormat: () => new CmqError(4000, 10500, 'endpoint format error'),
  undefinedProtocol: () => new CmqError(4000, 10510, 'undefined protocol'),
  undefinedNotifyStrategy: () => new CmqError(4000, 10520, 'undefined notify retry stragety'),
  undefinedContentFormat: () => new CmqError(4000, 10530, 'undefined notify content format'),
  illegalEndpoint: () => new CmqError(4000, 10630, 'illegal endpoint'),
  queueNeedsSimplified: () => new CmqError(4000, 10640, 'notifyContentFormat of protocol queue must be SIMPLIFIED'),
  lackRoutingKey: () => new CmqError(4000, 10700, 'parameters lack of routingKey'),
  lackBindingKey: () => new CmqError(4000, 10710, 'parameters lack of bindingKey'),
  tooManyMsgTags: () => new CmqError(4000, 10720, 'too many msgTag'),
  tooManyDelimiters: () => new CmqError(4000, 10691, 'too many delimeters'),
  subscriptionExists: () => new CmqError(4490, 10470, 'subscribtion is already existed'),
  subscriptionLimit: () => new CmqError(4500, 10480, 'number of subscription has reached the limit'),
  topicLimit: () => new CmqError(4450, 10610, 'number of topics has reached the limit'),
  endpointBlank: () => new CmqError(4510, 10570, 'url connot contain any blank characters'),
  topicNoSubscription: () =>
    new CmqError(6030, 10650, 'topic has no subscription, please create a subscription before publishing message'),
  topicNoMatch: () => new CmqError(6030, 10730, 'no bindingKey or filterTag matches the routingKey or msgTag'),
  topicNameCooldown: () => new CmqError(6040, 10660, 'topic name reused too soon after deletion'),

  deletePartlyFailed: (errorList: unknown[]) =>
    new CmqError(6010, 10150, 'delete message partially failed', { errorList }),
  batchDeleteFailed: (errorList: unknown[]) => new CmqError(6020, 10290, 'batch delete message failed', { errorList }),
} as const;
