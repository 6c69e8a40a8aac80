/**
 * `npm run bench`: every bench in turn. Options: `--quick` (each bench's short plan) and `--json PREFIX`
 * (each bench writes `PREFIX.<bench>.json`). A bench's own options go to it when run alone, e.g.
 * `node bin/run-ts.js bench/forward-cam.ts --models resnet50`. The soak (bench/live-soak.ts) is long and runs
 * on its own.
 */
import { parseArgs } from 'node:util';
import { runForwardCamBench } from './forward-cam.ts';
import { runVideoE2eBench } from './video-e2e.ts';
import { runLiveLatencyBench } from './live-latency.ts';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { quick: { type: 'boolean', default: false }, json: { type: 'string' } },
  strict: true,
});

function argsFor(bench: string): string[] {
  return [...(values.quick ? ['--quick'] : []), ...(values.json ? ['--json', `${values.json}.${bench}.json`] : [])];
}

console.log('## forward + CAM per engine (bench/forward-cam.ts)\n');
await runForwardCamBench(argsFor('forward-cam'));
console.log('\n## video to annotated MP4, end to end vs model only (bench/video-e2e.ts)\n');
await runVideoE2eBench(argsFor('video-e2e'));
console.log('\n## live latency, frame capture to map on the client (bench/live-latency.ts)\n');
await runLiveLatencyBench(argsFor('live-latency'));
