'use strict';
// The ceiling: a bare Fastify endpoint that takes the same form body and answers a CMQ-shaped
// reply without parsing, authenticating or storing anything.
const fastify = require('fastify')({ logger: false, keepAliveTimeout: 65000 });
fastify.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
let n = 0;
fastify.post('/v2/index.php', async (_req, reply) =>
  reply.header('content-type', 'application/json; charset=utf-8').send(`{"code":0,"message":"","requestId":"${++n}","msgId":"${n}"}`),
);
fastify.get('/health', async () => ({ status: 'ok' }));
fastify.listen({ port: Number(process.argv[2] || 18081), host: '127.0.0.1' });
