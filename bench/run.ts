/**
 * `npm run bench`: every bench in turn, arguments passed through to each (`npm run bench -- --quick`).
 * For now the core bench: forward pass + CAM per engine, backend and model (bench/forward-cam.ts).
 * Add later benches here; each prints markdown and writes JSON with `--json FILE`.
 */
import { runForwardCamBench } from './forward-cam.ts';

await runForwardCamBench(process.argv.slice(2));
