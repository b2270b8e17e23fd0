/**
 * Where the service keeps what outlives a request: uploaded models, results and job records. Results
 * are content-addressed (lib/serve/job.ts: resultKey), so a job computed twice (a retry, two workers
 * racing) lands on the same entry with the same bytes, and the first one in stays.
 *
 * Store is the interface the server and the workers use; DirectoryStore keeps everything in one folder
 * (on one machine, or mounted by all of them). Every name in it is made by the store (hex digests and
 * ids it checked): no path a client sends is ever opened.
 *
 *   inputs/<sha256>/model.onnx     an upload, alone in its folder (its external data could name nothing else)
 *   results/<key>/model.onnx       a pruned model, and report.json beside it
 *   jobs/<id>.json                 the local queue's job records
 *   tmp/                           uploads and results being written (renamed into place when whole)
 */
import { createHash, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';

import { RedppError } from '../errors';

export interface StoredInput {
  sha256: string;
  bytes: number;
}

export interface Store {
  /** Streams an upload in, `maxBytes` at most (UPLOAD_TOO_LARGE beyond, and nothing kept). */
  putInput(body: Readable, maxBytes: number): Promise<StoredInput>;
  /** A local path of an input, for prune(). */
  inputFile(sha256: string): Promise<string>;
  /** A new empty folder to write a result into, then to commit or drop. */
  stagingDir(): Promise<string>;
  /** Moves a staged result into place under `key`; when one is there already (same key: same bytes), keeps it. */
  commitResult(key: string, staged: string): Promise<void>;
  hasResult(key: string): Promise<boolean>;
  /** The result's model file and its size. */
  resultModel(key: string): Promise<{ file: string; bytes: number }>;
  resultReport(key: string): Promise<unknown>;
  saveJob(id: string, record: object): Promise<void>;
  readJob(id: string): Promise<unknown | undefined>;
  /** Every job record (a server reads them once, at start). */
  jobs(): Promise<unknown[]>;
  /** Drops a staging folder. */
  discard(staged: string): Promise<void>;
}

const HEX64 = /^[0-9a-f]{64}$/;
/** A staging entry this old is a dead process's (longer than the longest job time limit, a week). */
const STALE_MS = 8 * 24 * 3600 * 1000;
const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Whether `id` has the form of a job id (a UUID): anything else is refused before it nears a path. */
export function isJobId(id: string): boolean {
  return JOB_ID.test(id);
}

function checked(pattern: RegExp, what: string, name: string): string {
  if (!pattern.test(name)) throw new RedppError('INVALID_ARGUMENT', `not a ${what}: '${name.slice(0, 80)}'`);
  return name;
}

export class DirectoryStore implements Store {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    for (const dir of ['inputs', 'results', 'jobs', 'tmp']) fs.mkdirSync(path.join(this.root, dir), { recursive: true });
    // What a process killed mid-write left (a worker's SIGKILL): old enough that no job can still be
    // writing it, whichever machine ran it.
    const tmp = path.join(this.root, 'tmp');
    for (const name of fs.readdirSync(tmp)) {
      const entry = path.join(tmp, name);
      // Another process may move its entry away meanwhile.
      const stat = fs.statSync(entry, { throwIfNoEntry: false });
      if (stat && Date.now() - stat.mtimeMs > STALE_MS) fs.rmSync(entry, { recursive: true, force: true });
    }
  }

  /** A result's folder, or a file in it. */
  private resultPath(key: string, file = ''): string {
    return path.join(this.root, 'results', checked(HEX64, 'result key', key), file);
  }

  private tmpPath(): string {
    return path.join(this.root, 'tmp', `${process.pid}-${randomUUID()}`);
  }

  async putInput(body: Readable, maxBytes: number): Promise<StoredInput> {
    const tmp = this.tmpPath();
    const hash = createHash('sha256');
    let bytes = 0;
    const out = fs.createWriteStream(tmp, { flags: 'wx' });
    try {
      await new Promise<void>((resolve, reject) => {
        const fail = (e: unknown) => {
          body.unpipe(out);
          out.destroy();
          reject(e);
        };
        body.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes > maxBytes) fail(new RedppError('UPLOAD_TOO_LARGE', `the model is over the server's upload limit of ${maxBytes} bytes`));
          else hash.update(chunk);
        });
        body.on('error', fail);
        body.on('aborted', () => fail(new RedppError('INVALID_ARGUMENT', 'the upload was cut off before its end')));
        out.on('error', (e) => fail(new RedppError('IO_ERROR', `the store could not write the upload: ${e.message}`)));
        out.on('finish', resolve);
        body.pipe(out);
      });
      if (bytes === 0) throw new RedppError('NOT_ONNX', 'the upload is empty: send the model as the request body');
      const sha256 = hash.digest('hex');
      const dir = path.join(this.root, 'inputs', sha256);
      await fs.promises.mkdir(dir, { recursive: true });
      // The same bytes uploaded twice: the file already there is the same.
      await fs.promises.rename(tmp, path.join(dir, 'model.onnx'));
      return { sha256, bytes };
    } finally {
      await fs.promises.rm(tmp, { force: true });
    }
  }

  async inputFile(sha256: string): Promise<string> {
    const file = path.join(this.root, 'inputs', checked(HEX64, 'digest', sha256), 'model.onnx');
    await fs.promises.access(file).catch(() => Promise.reject(new RedppError('IO_ERROR', `the store has no input ${sha256}`)));
    return file;
  }

  async stagingDir(): Promise<string> {
    const dir = this.tmpPath();
    await fs.promises.mkdir(dir);
    return dir;
  }

  async commitResult(key: string, staged: string): Promise<void> {
    try {
      await fs.promises.rename(staged, this.resultPath(key));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
      await this.discard(staged);
    }
  }

  async hasResult(key: string): Promise<boolean> {
    return fs.promises.access(this.resultPath(key, 'report.json')).then(
      () => true,
      () => false,
    );
  }

  async resultModel(key: string): Promise<{ file: string; bytes: number }> {
    const file = this.resultPath(key, 'model.onnx');
    return { file, bytes: (await fs.promises.stat(file)).size };
  }

  async resultReport(key: string): Promise<unknown> {
    return JSON.parse(await fs.promises.readFile(this.resultPath(key, 'report.json'), 'utf8'));
  }

  async saveJob(id: string, record: object): Promise<void> {
    const file = path.join(this.root, 'jobs', `${checked(JOB_ID, 'job id', id)}.json`);
    const tmp = this.tmpPath();
    await fs.promises.writeFile(tmp, JSON.stringify(record));
    await fs.promises.rename(tmp, file);
  }

  async readJob(id: string): Promise<unknown | undefined> {
    if (!isJobId(id)) return undefined;
    let text: string;
    try {
      text = await fs.promises.readFile(path.join(this.root, 'jobs', `${id}.json`), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new RedppError('IO_ERROR', `the store cannot read job ${id}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    try {
      return JSON.parse(text);
    } catch {
      // A record cut short (the rename makes that unlikely, a disk can still do it): not a job.
      return undefined;
    }
  }

  async jobs(): Promise<unknown[]> {
    const names = (await fs.promises.readdir(path.join(this.root, 'jobs'))).filter((n) => n.endsWith('.json') && isJobId(n.slice(0, -5)));
    const records = await Promise.all(names.map((n) => this.readJob(n.slice(0, -5))));
    return records.filter((r) => r !== undefined);
  }

  async discard(staged: string): Promise<void> {
    await fs.promises.rm(staged, { recursive: true, force: true });
  }
}
