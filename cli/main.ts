/**
 * camstream's command line. Each subcommand lives in cli/commands/; this file wires them, prints errors as
 * one clear line and maps error codes to exit statuses (documented in the README).
 */
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { commands } from './commands/index.ts';
import { checkInputExists, exitCodeFor, formatError, quietOnClosedStdout, USAGE_EXIT_CODE } from './errors.ts';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

quietOnClosedStdout(process.stdout);

const program = new Command('camstream')
  .description('Class activation maps (Zhou et al. 2016) from GAP networks over images, video and webcams')
  .version(pkg.version)
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

for (const make of commands) program.addCommand(make());
// Subcommands do not inherit exitOverride: without it commander would exit 1 itself on a usage error.
const overrideExits = (command: Command): void => {
  for (const sub of command.commands) overrideExits(sub.exitOverride());
};
overrideExits(program);
// A missing local video is bad input (exit 3), said before ffprobe gets to call it a failed probe.
program.hook('preAction', (_root, action) => {
  if (action.name() === 'video' && typeof action.args[0] === 'string') checkInputExists(action.args[0], 'video');
});

try {
  if (process.argv.length <= 2) program.outputHelp();
  else await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // Commander has already printed help, the version or its own usage message; only help and the version
    // exit 0, every usage error (missing or unknown option, bad argument) is a bad option (2).
    process.exitCode = error.exitCode === 0 ? 0 : USAGE_EXIT_CODE;
  } else {
    process.stderr.write(`camstream: ${formatError(error)}\n`);
    process.exitCode = exitCodeFor(error);
  }
}
