import { Command, Option } from 'commander';
import { ConfigError } from '../../common/index.ts';
import { reviewHome } from './review.ts';
import { addModelOptions, defaultModelDir, openModel, parseNumberIn, parsePositiveInt, type ModelCliOptions } from '../model.ts';
import { backendFor, collectModels, listModels } from '../model-list.ts';
import type { ModelEntry } from '../../server/index.ts';
import type { CamModel } from '../../models/index.ts';
import { basename, resolve } from 'node:path';

interface ServeCliOptions extends ModelCliOptions {
  host: string;
  port: number;
  token?: string;
  mediaRoot?: string;
  top: number;
  smooth: number;
  allowUrlSources: boolean;
  allowPrivateUrls: boolean;
  deviceSources: boolean;
  home?: string;
  models?: string[];
  lowConfidence: number;
  redis?: string;
}

/** Exit statuses after a clean shutdown on a signal: 128 + the signal's number, as shells report it. */
const SIGNAL_EXIT: Readonly<Record<'SIGINT' | 'SIGTERM', number>> = Object.freeze({ SIGINT: 130, SIGTERM: 143 });

function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(`--port must be an integer in [0, 65535], got '${value}'`);
  return n;
}

/** What the page says about the embedded model. */
export const EMBEDDED_MODEL_NOTE = 'a digits model: hold up a handwritten digit';

/**
 * What viewers may switch to besides the running model: the embedded model (when --model named another) and
 * the --models list, loaded lazily with the running model's backend where the engine is the same.
 */
function offeredModels(options: ServeCliOptions, listed: Awaited<ReturnType<typeof listModels>>, running: CamModel): ModelEntry[] {
  const cacheDir = process.env.CAMSTREAM_CACHE || undefined;
  const entries: ModelEntry[] = [];
  const embedded = defaultModelDir();
  // Offered unless it is what runs already (--model naming the zoo folder).
  if (options.model !== undefined && embedded !== undefined && resolve(options.model) !== embedded) {
    entries.push({ name: basename(embedded), spec: embedded, note: EMBEDDED_MODEL_NOTE, options: { backend: running.info.engine === 'tfjs' ? running.info.backend : undefined, threads: options.threads, cacheDir } });
  }
  for (const m of listed) entries.push({ name: m.name, spec: m.spec, options: { backend: backendFor(m, running), threads: options.threads, spinWait: options.spinWait, cacheDir } });
  return entries;
}

export function serveCommand(): Command {
  const command = new Command('serve')
    .summary('live class activation maps in the browser: webcam, files, streams')
    .description(
      'Serves the web client and a WebSocket endpoint. Viewers send their webcam frames or pick a server-side ' +
        'source (a video under --media-root, an RTSP/HTTP URL, a v4l2 camera); the server runs the model on the ' +
        'latest frame (dropping frames while busy) and sends maps, labels and boxes back. Listens on loopback ' +
        'unless --host says otherwise, which then requires --token (or CAMSTREAM_TOKEN).',
    )
    .option('--host <addr>', 'interface to listen on', '127.0.0.1')
    .option('-p, --port <n>', 'TCP port (0: any free port)', parsePort, 8080)
    .option('--token <secret>', 'required on every request (?token=, Bearer header or cookie); default CAMSTREAM_TOKEN')
    .option('--media-root <dir>', 'folder whose videos viewers may open (paths confined to it)')
    .option('-k, --top <k>', 'classes with maps per frame, to start with', parsePositiveInt('--top'), 5)
    .option('--smooth <a>', 'EMA weight of the past in [0, 1), to start with; 0 turns smoothing off', parseNumberIn('--smooth', 0, 0.99), 0.7)
    .option('--allow-url-sources', 'let viewers open RTSP/HTTP(S) URLs as sources (off by default); only public addresses')
    .option('--allow-private-urls', 'with --allow-url-sources: also URLs whose host is loopback, private or link-local')
    // URL sources are off by default now; the old switch is still accepted and does nothing.
    .addOption(new Option('--no-url-sources').hideHelp())
    .option('--no-device-sources', 'refuse v4l2 camera sources')
    .option('--home <dir>', 'camstream home whose review.db the /review page shows (default: CAMSTREAM_HOME or ~/.camstream)')
    .option(
      '--models <list>',
      'more models viewers may pick for their source, besides --model and the embedded model (always offered): comma-separated [name=]spec (folder, model.json, .onnx, URL), or a folder of model folders; repeatable. Each loads on first pick.',
      collectModels,
    )
    .option('--redis <url>', 'show the job queue of `camstream worker`s at /jobs (redis:// or rediss:// URL)')
    .option('--low-confidence <p>', 'with a model that has a "no digit" class: a top probability under p shows as "no digit"', parseNumberIn('--low-confidence', 0, 1), 0.5);
  addModelOptions(command);
  return command.action(async (options: ServeCliOptions) => {
    const [{ shutdownFfmpeg }, { locateCliFfmpeg }, { resolveServerConfig, startServer }, { reviewDbPath }] = await Promise.all([
      import('../../pipelines/index.ts'),
      import('../ffmpeg.ts'),
      import('../../server/index.ts'),
      import('../../review/index.ts'),
    ]);
    const token = options.token ?? (process.env.CAMSTREAM_TOKEN || undefined);
    // Refuse a bad host/token/port before spending seconds on the model.
    resolveServerConfig({ http: { host: options.host, port: options.port, token } });
    // A typo in --models fails before the model loads.
    const listed = await listModels(options.models ?? []);
    const model = await openModel(options);
    let server;
    try {
      server = await startServer({
        model,
        // Without --model the embedded digits model runs: the page says what it recognises.
        modelNote: options.model === undefined ? EMBEDDED_MODEL_NOTE : undefined,
        models: offeredModels(options, listed, model),
        http: { host: options.host, port: options.port, token },
        sources: {
          mediaRoot: options.mediaRoot,
          urlSources: options.allowUrlSources === true,
          privateUrls: options.allowPrivateUrls === true,
          deviceSources: options.deviceSources,
          tools: await locateCliFfmpeg(),
        },
        live: { settings: { topK: Math.min(options.top, model.info.numClasses), smoothing: options.smooth }, lowConfidence: options.lowConfidence },
        review: { dbPath: reviewDbPath(reviewHome(options.home)) },
        redis: options.redis,
        log: (line) => process.stderr.write(`camstream: ${line}\n`),
      });
    } catch (err) {
      await model.dispose();
      throw err;
    }
    // Listening before the URLs are printed: whoever reads them may signal at once, and a signal with no
    // handler in place would end the process by the default action, without the shutdown below.
    const stopped = new Promise<keyof typeof SIGNAL_EXIT>((resolveStop) => {
      const stop = (name: keyof typeof SIGNAL_EXIT): void => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolveStop(name);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    const shown = token ? `${server.url}?token=${encodeURIComponent(token)}` : server.url;
    process.stdout.write(`camstream serve: ${shown}\n`);
    const review = token ? `${server.url}review?token=${encodeURIComponent(token)}` : `${server.url}review`;
    process.stdout.write(`camstream serve: review ${review}\n`);
    const signal = await stopped;
    process.stderr.write('camstream: shutting down\n');
    await server.dispose();
    await shutdownFfmpeg();
    await model.dispose();
    process.exitCode = SIGNAL_EXIT[signal];
  });
}
