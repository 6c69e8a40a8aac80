/**
 * camstream's command line. Each subcommand lives in cli/commands/; this file wires them, prints errors as
 * one clear line and maps error codes to exit statuses (documented in the README).
 */
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { commands } from './commands/index.ts';
import { exitCodeFor, formatError } from './errors.ts';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command('camstream')
  .description('Class activation maps (Zhou et al. 2016) from GAP networks over images, video and webcams')
  .version(pkg.version)
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

for (const make of commands) program.addCommand(make());

try {
  if (process.argv.length <= 2) program.outputHelp();
  else await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // Commander has already printed help, the version or its own usage message.
    process.exitCode = error.exitCode;
  } else {
    process.stderr.write(`camstream: ${formatError(error)}\n`);
    process.exitCode = exitCodeFor(error);
  }
}
