import { predictionSuite } from './activation-predict-cases.ts';

predictionSuite('wasm');
