// A small ONNX graph builder on onnx-proto: typed inputs/outputs, float32/int64 initializers, nodes
// with attributes, then verify + encode. Used to export trained U-Nets, to build the onnxruntime
// training graph, and to build small models in tests. Also reads back a model's I/O signature.
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export type ElemType = 'float32' | 'int64' | 'int32' | 'uint8' | 'bool';
/** A dimension: a fixed size, or a symbolic name for a dynamic axis. */
export type Dim = number | string;

export type AttrValue =
  | { kind: 'int'; value: number }
  | { kind: 'ints'; value: number[] }
  | { kind: 'float'; value: number }
  | { kind: 'floats'; value: number[] }
  | { kind: 'string'; value: string }
  | { kind: 'tensor'; value: TensorInit };

export interface TensorInit {
  name?: string;
  type: 'float32' | 'int64';
  dims: number[];
  /** float32 values, or int64 values as numbers (exact up to 2^53). */
  data: Float32Array | number[];
}

const elemCode: Record<ElemType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
  int32: onnx.TensorProto.DataType.INT32,
  uint8: onnx.TensorProto.DataType.UINT8,
  bool: onnx.TensorProto.DataType.BOOL,
};

function tensorProto(t: TensorInit, name: string): onnxProto.onnx.ITensorProto {
  if (t.type === 'float32') {
    const data = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
    const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    return { name, dims: t.dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: raw.slice() };
  }
  const values = Array.from(t.data);
  const raw = new Uint8Array(values.length * 8);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(Math.trunc(v)), true));
  return { name, dims: t.dims, dataType: onnx.TensorProto.DataType.INT64, rawData: raw };
}

function valueInfo(name: string, type: ElemType, shape: Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: elemCode[type],
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, a: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.kind) {
    case 'int':
      return { name, type: T.INT, i: a.value };
    case 'ints':
      return { name, type: T.INTS, ints: a.value };
    case 'float':
      return { name, type: T.FLOAT, f: a.value };
    case 'floats':
      return { name, type: T.FLOATS, floats: a.value };
    case 'string':
      return { name, type: T.STRING, s: new TextEncoder().encode(a.value) };
    case 'tensor':
      return { name, type: T.TENSOR, t: tensorProto(a.value, a.value.name ?? name) };
    default: {
      const never: never = a;
      throw new Error(`unknown attribute kind ${String(never)}`);
    }
  }
}

/** Shorthands for attributes: numbers → int/float is explicit, because ONNX cares. */
export const attr = {
  int: (value: number): AttrValue => ({ kind: 'int', value }),
  ints: (value: number[]): AttrValue => ({ kind: 'ints', value }),
  float: (value: number): AttrValue => ({ kind: 'float', value }),
  floats: (value: number[]): AttrValue => ({ kind: 'floats', value }),
  string: (value: string): AttrValue => ({ kind: 'string', value }),
  tensor: (value: TensorInit): AttrValue => ({ kind: 'tensor', value }),
};

export class OnnxGraphBuilder {
  readonly #nodes: onnxProto.onnx.INodeProto[] = [];
  readonly #inits: onnxProto.onnx.ITensorProto[] = [];
  readonly #inputs: onnxProto.onnx.IValueInfoProto[] = [];
  readonly #outputs: onnxProto.onnx.IValueInfoProto[] = [];
  readonly #names = new Set<string>();
  readonly #int64Cache = new Map<string, string>();
  #counter = 0;

  constructor(readonly graphName = 'loupe') {}

  /** A fresh, unique tensor name with a readable prefix. */
  fresh(prefix: string): string {
    let name = `${prefix}_${this.#counter++}`;
    while (this.#names.has(name)) name = `${prefix}_${this.#counter++}`;
    this.#names.add(name);
    return name;
  }

  input(name: string, type: ElemType, shape: Dim[]): string {
    this.#names.add(name);
    this.#inputs.push(valueInfo(name, type, shape));
    return name;
  }

  output(name: string, type: ElemType, shape: Dim[]): string {
    this.#outputs.push(valueInfo(name, type, shape));
    return name;
  }

  initializer(name: string, t: Omit<TensorInit, 'name'>): string {
    this.#names.add(name);
    this.#inits.push(tensorProto({ ...t, name }, name));
    return name;
  }

  /** A cached int64 constant initializer (shapes, axes, pads…). */
  int64(values: number[]): string {
    const key = values.join(',');
    const hit = this.#int64Cache.get(key);
    if (hit) return hit;
    const name = this.initializer(this.fresh('i64'), { type: 'int64', dims: [values.length], data: values });
    this.#int64Cache.set(key, name);
    return name;
  }

  /** A float32 scalar or vector constant. */
  float(values: number[] | Float32Array, dims: number[] = [values.length]): string {
    return this.initializer(this.fresh('f32'), { type: 'float32', dims, data: values instanceof Float32Array ? values : Float32Array.from(values) });
  }

  /**
   * Adds a node; returns its output names. `outputs` may be a count (fresh names) or explicit names.
   * An empty string in `inputs` is ONNX's "optional input omitted".
   */
  node(opType: string, inputs: string[], outputs: number | string[] = 1, attrs: Record<string, AttrValue> = {}): string[] {
    const outNames = typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.fresh(opType.toLowerCase())) : outputs;
    for (const o of outNames) this.#names.add(o);
    this.#nodes.push({
      opType,
      input: inputs,
      output: outNames,
      name: this.fresh(`n_${opType}`),
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outNames;
  }

  /** Single-output node. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outName?: string): string {
    const [out] = this.node(opType, inputs, outName ? [outName] : 1, attrs);
    return out as string;
  }

  get nodeCount(): number {
    return this.#nodes.length;
  }

  /** Verifies and serialises the model (opset 13 by default, IR 7 so that ORT accepts it). */
  build(options: { opset?: number; producer?: string; docString?: string; metadata?: Record<string, string> } = {}): Uint8Array {
    const model: onnxProto.onnx.IModelProto = {
      irVersion: 7,
      producerName: options.producer ?? 'loupe',
      opsetImport: [{ domain: '', version: options.opset ?? 13 }],
      docString: options.docString ?? '',
      metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: { name: this.graphName, node: this.#nodes, initializer: this.#inits, input: this.#inputs, output: this.#outputs },
    };
    const err = onnx.ModelProto.verify(model);
    if (err) throw new Error(`invalid ONNX model: ${err}`);
    return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
  }
}

export interface OnnxIo {
  name: string;
  elemType: ElemType | 'other';
  /** Fixed sizes as numbers, dynamic axes as their symbolic name (or '?' when unnamed). */
  shape: Dim[];
}

export interface OnnxSignature {
  inputs: OnnxIo[];
  outputs: OnnxIo[];
  opset: number | null;
  producer: string;
  metadata: Record<string, string>;
}

/** Reads the graph inputs (excluding initializers) and outputs of an ONNX model. */
export function readOnnxSignature(bytes: Uint8Array): OnnxSignature {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph;
  if (!graph) throw new Error('ONNX model has no graph');
  const initNames = new Set((graph.initializer ?? []).map((t) => t.name));
  const codeToType = new Map<number, ElemType>(Object.entries(elemCode).map(([k, v]) => [v, k as ElemType]));
  const io = (v: onnxProto.onnx.IValueInfoProto): OnnxIo => {
    const tt = v.type?.tensorType;
    const shape = (tt?.shape?.dim ?? []).map((d): Dim => {
      if (d.dimValue !== null && d.dimValue !== undefined && Number(d.dimValue) > 0) return Number(d.dimValue);
      return d.dimParam ? d.dimParam : '?';
    });
    return { name: v.name ?? '', elemType: codeToType.get(tt?.elemType ?? -1) ?? 'other', shape };
  };
  const opset = model.opsetImport.find((o) => !o.domain)?.version;
  return {
    inputs: (graph.input ?? []).filter((v) => !initNames.has(v.name ?? '')).map(io),
    outputs: (graph.output ?? []).map(io),
    opset: opset === undefined || opset === null ? null : Number(opset),
    producer: model.producerName ?? '',
    metadata: Object.fromEntries(model.metadataProps.map((p) => [p.key ?? '', p.value ?? ''])),
  };
}
