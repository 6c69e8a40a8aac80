#!/usr/bin/env node
// camstream's command-line entry. The sources are TypeScript run through tsx's loader, so what a user
// runs is what the tests run: no separate build step to forget.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
