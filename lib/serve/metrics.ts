/**
 * GET /metrics: Prometheus text from prom-client — jobs by state and the queue's depth (read from the
 * queue when scraped), job durations and bytes in and out (counted as jobs finish), and the process's
 * own figures (memory, event-loop lag).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

import type { JobQueue } from './queue';

export function serviceMetrics(queue: JobQueue): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'redpp_' });
  new Gauge({
    name: 'redpp_jobs',
    help: 'Jobs by state (done, failed and cancelled: since the store began, or as the queue keeps them)',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      for (const [state, n] of Object.entries(await queue.counts())) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'redpp_queue_depth',
    help: 'Jobs waiting to run',
    registers: [registry],
    async collect() {
      this.set((await queue.counts()).queued);
    },
  });
  const duration = new Histogram({
    name: 'redpp_job_duration_seconds',
    help: 'Run time of finished jobs (start to finish of the last attempt)',
    labelNames: ['state'],
    buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800],
    registers: [registry],
  });
  const bytesIn = new Counter({ name: 'redpp_input_bytes_total', help: 'Bytes of the models of jobs done', registers: [registry] });
  const bytesOut = new Counter({ name: 'redpp_output_bytes_total', help: 'Bytes of the pruned models of jobs done', registers: [registry] });
  queue.onFinished((view) => {
    if (view.startedAt && view.finishedAt) duration.observe({ state: view.state }, (view.finishedAt - view.startedAt) / 1000);
    if (view.state === 'done') {
      bytesIn.inc(view.input.bytes);
      bytesOut.inc(view.outputBytes ?? 0);
    }
  });
  return registry;
}
