/**
 * Model variants of the onnx-community export and their graph file names. No dependencies, so
 * the extension host can use it without loading onnx-proto or onnxruntime.
 */

/** Weight/activation variants of the export; the file is `onnx/model.onnx` or `onnx/model_<variant>.onnx`. */
export type ModelVariant = 'fp32' | 'fp16' | 'q4' | 'q4f16' | 'int8' | 'uint8' | 'quantized' | 'bnb4';
export const MODEL_VARIANTS: readonly ModelVariant[] = ['q4', 'fp32', 'fp16', 'q4f16', 'int8', 'uint8', 'quantized', 'bnb4'];

/** `model.onnx` for fp32, `model_<variant>.onnx` otherwise (inside the folder's `onnx/`). */
export function graphFileName(variant: ModelVariant): string {
  return variant === 'fp32' ? 'model.onnx' : `model_${variant}.onnx`;
}
