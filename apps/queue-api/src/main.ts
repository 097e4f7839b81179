import 'reflect-metadata';
import { runMain } from '@app/common';
import { createQueueApi } from './queue-api.app';

runMain('queue-api', async (config) => {
  const app = await createQueueApi(config);
  await app.listen(config.ports.cmq, config.host);
  console.log(
    `queue-api: CMQ endpoint on http://${config.publicHost}:${config.ports.cmq}/v2/index.php (and /), ` +
      `health on /health, regions ${config.regions.join(',')}`,
  );
  return app;
});
