export type { RecomputeDeclaration, RecomputeRefusal } from './activation-mode.ts';
export { activationMode, recomputeInFullMode, recomputesSegments } from './activation-mode.ts';
export { bfloat16Bits, float32OfBfloat16 } from './bfloat16.ts';
export type { Composition } from './compose.ts';
export { composePlugins } from './compose.ts';
export type {
  ActivationStrategy,
  AnyPlugin,
  Collective,
  GradientPart,
  MasterWeightsPlugin,
  ModelOps,
  OptimizerPlugin,
  OptimizerState,
  ParamInfo,
  Plugin,
  PluginKind,
  RowChunkSpec,
  SavedTensor,
  SavedTensorCodec,
  SegmentInfo,
  SpecificationVersion,
  StageSummary,
} from './contracts.ts';
export { SPECIFICATION_VERSION } from './contracts.ts';
export type { DropInOptimizerClass, DropInOptions, DropInPlugin, NamedTensor } from './drop-in-optimizer.ts';
export { DropInOptimizer, dropInOptimizerClass } from './drop-in-optimizer.ts';
export type { EngineMode, EngineOptions, GradAccumulator, ReplanOptions, StepResult } from './engine.ts';
export { TrainingEngine } from './engine.ts';
export type { EngineInternals } from './engine-internals.ts';
export { engineInternals } from './engine-internals.ts';
export {
  BackendUnavailableError,
  InputError,
  KstarError,
  PluginConflictError,
  ShapeError,
  TrainingError,
} from './errors.ts';
export type {
  BetasReference,
  HparamField,
  HparamPair,
  HparamsSchema,
  HparamsSpec,
  IgnoredReferenceKey,
  RequiredHparamField,
} from './hparams.ts';
export {
  BETAS_PAIR,
  defineHparams,
  finiteNonNegative,
  finitePositive,
  isBoolean,
  numberWhere,
  orNull,
  showValue,
  unitInterval,
  weightDecayField,
} from './hparams.ts';
export type { MemoryReport, MemoryTerm, WindowStats } from './ledger.ts';
export { MemoryLedger, trackHostBytes, uniqueBufferBytes } from './ledger.ts';
export type { GpuPeaks } from './ledger-table.ts';
export { formatBytes, ledgerTable } from './ledger-table.ts';
export type { ParamAccess } from './master-weights.ts';
export { materializedGrads, paramAccess } from './master-weights.ts';
export type { Batch, Stage, StagedModel } from './model.ts';
export { countParams } from './model.ts';
export type { PluginMethods } from './optimizer-head.ts';
export { optimizerHead } from './optimizer-head.ts';
export { parseBytes } from './parse-bytes.ts';
export type { PartitionOptions, PartitionPlan, SliceWriter } from './partition.ts';
export { opsSliceWriter, partitionedUpdate, planPartition, rowAlignment, stateRows } from './partition.ts';
export type { KernelImpl } from './plugin-options.ts';
export { checkStep, splitImpl } from './plugin-options.ts';
export type { SafeTensor, SafetensorsDtype, SafetensorsFile } from './safetensors.ts';
export {
  bfloat16Bytes,
  bytesOf,
  concatBytes,
  decodeSafetensors,
  encodeSafetensors,
  float32Of,
  SAFETENSORS_DTYPE_BYTES,
  safetensorsParts,
} from './safetensors.ts';
export type {
  ShardedTraining,
  ShardingContext,
  ShardingPlugin,
  ZeroStage,
} from './sharding.ts';
export {
  isVariable,
  requireStateVariables,
  stateVariable,
  stateVariableFrom,
  uniqueVariableName,
} from './state-variable.ts';
export type { FixedStepBytes } from './step-bytes.ts';
export { fixedStepBytes } from './step-bytes.ts';
