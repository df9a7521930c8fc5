// Runs tocsin rule modules (.wasm, ABI v1: rules-sdk/abi/README.md) on the
// browser's own WebAssembly, inside the engine's Web Worker. The engine drives
// each evaluation and answers the host calls; this only moves bytes in and out
// of a fresh instance, checks what the module exports and imports, and keeps
// its memory under the same cap as the host. Time limits are the main
// thread's job: it terminates this worker when an evaluation runs too long.

const IMPORTS = {
  query: 'i32 i32 -> i32',
  query_range: 'i32 i32 -> i32',
  series: 'i32 i32 -> i32',
  take_reply: 'i32 i32 -> i32',
  panic: 'i32 i32 ->',
};
const EXPORTS = ['memory', 'tocsin_abi_version', 'tocsin_alloc', 'tocsin_evaluate'];
export const ABI_VERSION = 1;
export const MEMORY_LIMIT = 64 << 20;
const MAX_RESPONSE = 16 << 20;

export class GuestRunner {
  constructor() {
    this.modules = new Map();
  }

  // Compiles and checks a module; throws a message saying what is wrong.
  add(name, bytes) {
    let module;
    try {
      module = new WebAssembly.Module(bytes);
    } catch (e) {
      throw new Error(`${name} is not a valid WebAssembly module: ${e.message}`);
    }
    const problems = [];
    for (const imp of WebAssembly.Module.imports(module)) {
      if (imp.module !== 'tocsin_v1' || !(imp.name in IMPORTS)) {
        problems.push(`imports \`${imp.module}::${imp.name}\`, which the host does not provide`);
      } else if (imp.kind !== 'function') {
        problems.push(`imports \`${imp.module}::${imp.name}\` as a non-function`);
      }
    }
    const exports = new Map(WebAssembly.Module.exports(module).map((e) => [e.name, e.kind]));
    for (const want of EXPORTS) {
      const kind = exports.get(want);
      if (want === 'memory') {
        if (kind !== 'memory') problems.push(`does not export its memory as \`memory\``);
      } else if (kind === undefined) {
        problems.push(`does not export the function \`${want}\``);
      } else if (kind !== 'function') {
        problems.push(`exports \`${want}\`, but not as a function`);
      }
    }
    if (problems.length) {
      throw new Error(`${name} is not a tocsin rule module: ${problems.join('; ')}`);
    }
    this.modules.set(name, module);
    return { name, size: bytes.byteLength };
  }

  remove(name) {
    this.modules.delete(name);
  }

  // A rule names a module by its upload name or by a path to a .wasm file;
  // in the browser both resolve to the dropped file's name.
  lookup(name) {
    const base = name.split('/').pop();
    for (const key of [name, base, base.replace(/\.wasm$/, '')]) {
      const m = this.modules.get(key);
      if (m) return m;
    }
    throw new Error(`is not loaded in the playground: drop ${base.endsWith('.wasm') ? base : base + '.wasm'} on the page`);
  }

  // Called by the engine (web/src/runtime.rs) for one evaluation.
  run(name, request, call, take) {
    const module = this.lookup(name);
    let memory = null;
    const overLimit = () => memory && memory.buffer.byteLength > MEMORY_LIMIT;
    const limitError = () =>
      new Error(`exceeded its memory limit of ${MEMORY_LIMIT >> 20} MiB (grew to ${Math.ceil(memory.buffer.byteLength / (1 << 20))} MiB)`);
    // Views are made afresh on every access: growth detaches old ones.
    const read = (ptr, len) => {
      if (overLimit()) throw limitError();
      return new Uint8Array(memory.buffer, ptr >>> 0, len >>> 0).slice();
    };
    const imports = {
      tocsin_v1: {
        query: (p, l) => call(0, read(p, l)),
        query_range: (p, l) => call(1, read(p, l)),
        series: (p, l) => call(2, read(p, l)),
        take_reply: (p, l) => {
          const reply = take(l >>> 0);
          if (reply.length === 0) return -5;
          if ((p >>> 0) + reply.length > memory.buffer.byteLength) return -1;
          new Uint8Array(memory.buffer).set(reply, p >>> 0);
          return reply.length;
        },
        panic: (p, l) => {
          call(3, read(p, Math.min(l >>> 0, 4096)));
        },
      },
    };
    let instance;
    try {
      instance = new WebAssembly.Instance(module, imports);
    } catch (e) {
      throw new Error(`could not be instantiated: ${e.message}`);
    }
    const ex = instance.exports;
    memory = ex.memory;
    const trap = (e) => {
      if (overLimit()) return limitError();
      if (e instanceof RangeError && /call stack/i.test(e.message)) return new Error('overflowed its stack');
      if (e instanceof WebAssembly.RuntimeError) return new Error(`trapped: ${e.message}`);
      return e instanceof Error ? e : new Error(String(e));
    };
    let version;
    try {
      version = ex.tocsin_abi_version();
    } catch (e) {
      throw trap(e);
    }
    if (version !== ABI_VERSION) {
      throw new Error(`was built for ABI version ${version}; this host speaks version ${ABI_VERSION}`);
    }
    let ptr, packed;
    try {
      ptr = ex.tocsin_alloc(request.length);
      if (ptr <= 0) throw new Error('could not allocate its request buffer');
      if (ptr + request.length > memory.buffer.byteLength) throw new Error('returned a request buffer outside its memory');
      new Uint8Array(memory.buffer).set(request, ptr);
      packed = ex.tocsin_evaluate(ptr, request.length);
    } catch (e) {
      throw trap(e);
    }
    if (overLimit()) throw limitError();
    if (packed < 0n) throw new Error(`refused the evaluation with error code ${packed}`);
    const rptr = Number(packed >> 32n);
    const rlen = Number(packed & 0xffffffffn);
    if (rlen > MAX_RESPONSE) throw new Error(`returned ${rlen} bytes, more than the limit of ${MAX_RESPONSE}`);
    if (rptr + rlen > memory.buffer.byteLength) throw new Error('returned a response outside its memory');
    return new Uint8Array(memory.buffer, rptr, rlen).slice();
  }
}
