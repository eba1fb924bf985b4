#!/usr/bin/env node
import { runCli } from './cli.ts';
import { runAsMain } from './run-as-main.ts';

runAsMain('kstar', runCli);
