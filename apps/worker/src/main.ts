import 'reflect-metadata';
import { runMain } from '@app/common';
import { createWorker } from './worker.app';

runMain('worker', async (config) => {
  const app = await createWorker(config);
  await app.listen(config.ports.worker, config.host);
  console.log(`worker: processors and schedules running, health on http://${config.publicHost}:${config.ports.worker}/health`);
  return app;
});
