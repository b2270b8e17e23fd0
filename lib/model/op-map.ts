/**
 * A table keyed by an op's domain and type, for the registries that attach behaviour to ops (layer
 * kinds, channel rules). 'ai.onnx' is the default domain, as is ''. A map per domain, not a key
 * string per lookup: the registries are asked once per node, a million times on large graphs.
 */
export class OpMap<T> {
  private readonly domains = new Map<string, Map<string, T>>();

  get(domain: string, opType: string): T | undefined {
    return this.domains.get(canonicalDomain(domain))?.get(opType);
  }

  /** Sets the entry; returns a function that restores the one it replaced (or removes it). */
  set(domain: string, opType: string, value: T): () => void {
    const d = canonicalDomain(domain);
    let ops = this.domains.get(d);
    if (!ops) this.domains.set(d, (ops = new Map()));
    const table = ops;
    const had = table.has(opType);
    const previous = table.get(opType);
    table.set(opType, value);
    return () => {
      if (had) table.set(opType, previous as T);
      else table.delete(opType);
    };
  }

  /** The op types that have an entry in `domain`. */
  opTypes(domain: string): string[] {
    return [...(this.domains.get(canonicalDomain(domain))?.keys() ?? [])];
  }
}

function canonicalDomain(domain: string): string {
  return domain === 'ai.onnx' ? '' : domain;
}
