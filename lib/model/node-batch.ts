/**
 * NodeBatch: nodes encoded as GraphProto's field 1, straight into one buffer.
 *
 * protobufjs's Writer queues an operation object for every tag, length and string and replays them at
 * the end: about ten objects a node, which on a graph of a million nodes were most of its save. Here a
 * node's fields go into the buffer as they are met. The bytes are protobufjs's own (test/model-io.ts
 * compares them): fields in number order, a singular field written when it is the message's own
 * property, every element of a list, strings as Buffer.byteLength measures them and written by the
 * same functions protobufjs's BufferWriter uses where they are not ASCII. Attributes are encoded by
 * protobufjs, one at a time; a node with metadata or device configurations, or a field of the wrong
 * type (protobufjs's error is the one to give), is encoded whole by protobufjs.
 */
import * as protobuf from 'protobufjs';

import { hasField, onnxTypes, type NodeProto } from './proto';

/** A tag: field number and wire type 2 (length-delimited), one byte for fields 1 to 15. */
const tag = (field: number) => (field << 3) | 2;
const NODE = tag(1);

/** A singular string field as protobufjs's encoder sees it: written when set and the message's own. */
const present = (node: NodeProto, field: 'name' | 'op_type' | 'doc_string' | 'domain' | 'overload', value: unknown): value is string =>
  value != null && hasField(node, field);

/** Room for a string field: tag, a length of up to 5 bytes, and 3 bytes a UTF-16 unit at most. */
const room = (s: string | null | undefined) => (s == null ? 0 : 6 + 3 * s.length);

export class NodeBatch {
  private buf: Buffer;
  private pos = 0;
  private readonly attributeWriter = protobuf.Writer.create();

  /** `capacity`: the bytes a batch is expected to reach before it is taken (it grows past them if need be). */
  constructor(private readonly capacity: number) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  /** Bytes written since the last take(). */
  get length(): number {
    return this.pos;
  }

  /** Appends the node as a GraphProto node field (tag, length, NodeProto). */
  add(node: NodeProto): void {
    const attributes = this.plainAttributes(node);
    if (attributes === undefined) {
      this.addEncoded(onnxTypes().Node.encode(node as unknown as protobuf.Message).finish());
      return;
    }
    // Each field read once, by name (a field name in a variable made every read a keyed lookup).
    const { input, output, name, op_type: opType, doc_string: docString, domain, overload } = node;
    let bound = 16 + room(name) + room(opType) + room(docString) + room(domain) + room(overload);
    for (let i = 0; i < input.length; i++) bound += room(input[i]);
    for (let i = 0; i < output.length; i++) bound += room(output[i]);
    for (let i = 0; i < attributes.length; i++) bound += 6 + attributes[i].byteLength;
    this.reserve(bound);
    const start = this.pos;
    // The length goes in one byte after the tag, as almost every node's does; a longer node moves over.
    let p = start + 2;
    for (let i = 0; i < input.length; i++) p = this.string(tag(1), input[i], p);
    for (let i = 0; i < output.length; i++) p = this.string(tag(2), output[i], p);
    if (present(node, 'name', name)) p = this.string(tag(3), name, p);
    if (present(node, 'op_type', opType)) p = this.string(tag(4), opType, p);
    for (let i = 0; i < attributes.length; i++) {
      const a = attributes[i];
      this.buf[p++] = tag(5);
      p = this.varint(a.byteLength, p);
      this.buf.set(a, p);
      p += a.byteLength;
    }
    if (present(node, 'doc_string', docString)) p = this.string(tag(6), docString, p);
    if (present(node, 'domain', domain)) p = this.string(tag(7), domain, p);
    if (present(node, 'overload', overload)) p = this.string(tag(8), overload, p);
    const body = p - start - 2;
    this.buf[start] = NODE;
    if (body < 0x80) {
      this.buf[start + 1] = body;
      this.pos = p;
    } else {
      const lengthBytes = varintLength(body);
      this.buf.copyWithin(start + 1 + lengthBytes, start + 2, p);
      this.varint(body, start + 1);
      this.pos = p - 1 + lengthBytes;
    }
  }

  /** The bytes added since the last take(); the batch goes on in a new buffer. */
  take(): Uint8Array {
    const bytes = this.buf.subarray(0, this.pos);
    this.buf = Buffer.allocUnsafe(this.capacity);
    this.pos = 0;
    return bytes;
  }

  /**
   * The encoded attributes of a node this batch writes itself, or undefined for one protobufjs writes
   * whole: metadata or device configurations, or fields of a type other than the schema's.
   */
  private plainAttributes(node: NodeProto): readonly Uint8Array[] | undefined {
    const { input, output, attribute, metadata_props: metadata } = node;
    const devices = (node as { device_configurations?: unknown[] }).device_configurations;
    if (metadata?.length || devices?.length) return undefined;
    if (!Array.isArray(input) || !Array.isArray(output) || !Array.isArray(attribute)) return undefined;
    for (let i = 0; i < input.length; i++) if (typeof input[i] !== 'string') return undefined;
    for (let i = 0; i < output.length; i++) if (typeof output[i] !== 'string') return undefined;
    for (const v of [node.name, node.op_type, node.doc_string, node.domain, node.overload]) if (v != null && typeof v !== 'string') return undefined;
    if (attribute.length === 0) return NO_ATTRIBUTES;
    const A = onnxTypes().Attribute;
    // Depth 1, as protobufjs's NodeProto encoder passes to its attributes.
    const encode = A.encode as (m: unknown, w: protobuf.Writer, depth: number) => protobuf.Writer;
    const w = this.attributeWriter;
    return attribute.map((a) => {
      const bytes = encode.call(A, a, w, 1).finish();
      w.reset(); // finish() leaves the writer as it was
      return bytes;
    });
  }

  private addEncoded(bytes: Uint8Array): void {
    this.reserve(6 + bytes.byteLength);
    this.buf[this.pos] = NODE;
    const p = this.varint(bytes.byteLength, this.pos + 1);
    this.buf.set(bytes, p);
    this.pos = p + bytes.byteLength;
  }

  /** A string field at p (tag, length, UTF-8); returns the position after it. */
  private string(t: number, s: string, p: number): number {
    const buf = this.buf;
    buf[p++] = t;
    const n = s.length;
    if (n < 0x80) {
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[p + 1 + i] = c;
      }
      if (i === n) {
        buf[p] = n;
        return p + 1 + n;
      }
    }
    const len = Buffer.byteLength(s);
    p = this.varint(len, p);
    if (n < 40) protobuf.util.utf8.write(s, buf, p);
    else buf.write(s, p, 'utf8');
    return p + len;
  }

  private varint(v: number, p: number): number {
    while (v >= 0x80) {
      this.buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[p++] = v;
    return p;
  }

  private reserve(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.pos + bytes));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
}

const NO_ATTRIBUTES: readonly Uint8Array[] = Object.freeze([]) as readonly Uint8Array[];

function varintLength(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v >>>= 7;
    n++;
  }
  return n;
}
