// Minimal ONNX graph builder on top of onnx-proto (protobufjs static code), with every
// initializer stored in one external data file next to the graph.
import * as fs from 'node:fs';
import { onnx } from 'onnx-proto';

export const DT = onnx.TensorProto.DataType;
export type Dim = number | string;
export type AttrValue = number | string | number[] | { float: number } | { ints: number[] };

/** Appends raw tensor bytes to `<graph>_data`, returning TensorProto external-data entries. */
export class ExternalDataWriter {
  private fd: number;
  private offset = 0;
  readonly location: string;

  constructor(readonly filePath: string, location: string, private readonly align = 64) {
    this.location = location;
    this.fd = fs.openSync(filePath, 'w');
  }

  get size(): number {
    return this.offset;
  }

  /** Start a tensor (pads to the alignment) and return its offset. */
  begin(): number {
    const pad = (this.align - (this.offset % this.align)) % this.align;
    if (pad) this.write(new Uint8Array(pad));
    return this.offset;
  }

  write(bytes: ArrayBufferView): void {
    const u8 = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let done = 0;
    while (done < u8.length) done += fs.writeSync(this.fd, u8, done, u8.length - done);
    this.offset += u8.length;
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

function attr(name: string, v: AttrValue): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if (typeof v === 'object' && 'float' in v) return { name, type: T.FLOAT, f: v.float };
  if (typeof v === 'object' && 'ints' in v) return { name, type: T.INTS, ints: v.ints };
  if (Number.isInteger(v)) return { name, type: T.INT, i: v };
  return { name, type: T.FLOAT, f: v };
}

function valueInfo(name: string, elemType: number, dims: Dim[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export class GraphBuilder {
  readonly nodes: onnx.INodeProto[] = [];
  readonly initializers: onnx.ITensorProto[] = [];
  readonly inputs: onnx.IValueInfoProto[] = [];
  readonly outputs: onnx.IValueInfoProto[] = [];
  private counter = 0;
  private readonly smallConsts = new Map<string, string>();

  constructor(private readonly data: ExternalDataWriter) {}

  input(name: string, elemType: number, dims: Dim[]): string {
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  output(name: string, elemType: number, dims: Dim[]): void {
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  /** Adds a node; returns its output names. */
  node(opType: string, inputs: string[], outputs: string[] | number, attrs: Record<string, AttrValue> = {}, domain = '', name?: string): string[] {
    const nodeName = name ?? `/${opType}_${this.counter++}`;
    const outs = typeof outputs === 'number' ? Array.from({ length: outputs }, (_, i) => `${nodeName}/output_${i}`) : outputs;
    this.nodes.push({
      name: nodeName,
      opType,
      domain,
      input: inputs,
      output: outs,
      attribute: Object.entries(attrs).map(([k, v]) => attr(k, v)),
    });
    return outs;
  }

  /** Single-output node helper. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, domain = '', name?: string): string {
    return this.node(opType, inputs, 1, attrs, domain, name)[0];
  }

  /** Initializer whose bytes go to the external data file. */
  external(name: string, dataType: number, dims: number[], chunks: Iterable<ArrayBufferView>): string {
    const offset = this.data.begin();
    let length = 0;
    for (const c of chunks) {
      this.data.write(c);
      length += c.byteLength;
    }
    this.initializers.push({
      name,
      dataType,
      dims,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: this.data.location },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(length) },
      ],
    });
    return name;
  }

  /** Small int64 constant stored inline (shapes, axes). */
  constInt64(values: number[], scalar = false): string {
    const key = `i64:${scalar ? 's' : 'v'}:${values.join(',')}`;
    const hit = this.smallConsts.get(key);
    if (hit) return hit;
    const name = `/const/int64_${scalar ? 'scalar_' : ''}${values.join('_').replace(/-/g, 'm')}`;
    this.initializers.push({ name, dataType: DT.INT64, dims: scalar ? [] : [values.length], int64Data: values });
    this.smallConsts.set(key, name);
    return name;
  }

  constFloat(value: number): string {
    const key = `f32:${value}`;
    const hit = this.smallConsts.get(key);
    if (hit) return hit;
    const name = `/const/float_${this.smallConsts.size}`;
    this.initializers.push({ name, dataType: DT.FLOAT, dims: [], floatData: [value] });
    this.smallConsts.set(key, name);
    return name;
  }

  encodeModel(opts: { irVersion: number; opsets: Record<string, number>; graphName: string; producer: string }): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: opts.irVersion,
      producerName: opts.producer,
      producerVersion: '1',
      opsetImport: Object.entries(opts.opsets).map(([domain, version]) => ({ domain, version })),
      graph: {
        name: opts.graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
