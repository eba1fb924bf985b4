#!/usr/bin/env node
import { runAsMain } from '@kstar/trainer/internal';
import { runBench } from './cli.ts';

runAsMain('kstar bench', runBench);
