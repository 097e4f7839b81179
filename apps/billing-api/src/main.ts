import 'reflect-metadata';
import { runMain } from '@app/common';
import { createBillingApi } from './billing-api.app';

runMain('billing-api', async (config) => {
  const app = await createBillingApi(config);
  await app.listen(config.ports.billing, config.host);
  const base = `http://${config.publicHost}:${config.ports.billing}`;
  console.log(`billing-api: internal API on ${base}/v1, OpenAPI on ${base}/docs, web console on ${base}/console/, health on ${base}/health`);
  if (config.adminTokenGenerated) console.log(`billing-api: ADMIN_TOKEN for this run: ${config.adminToken}`);
  return app;
});
