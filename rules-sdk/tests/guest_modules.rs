//! Builds the example rules as guest modules and checks them the way the host
//! validates an upload: every import is a known `tocsin_v1` function with its
//! exact signature, the exports are there with theirs, and the module is small.

use tocsin_abi::{export, import};

const I32: u8 = 0x7f;
const I64: u8 = 0x7e;
const EXAMPLES: [&str; 4] = ["hysteresis", "f1_score", "zscore_drift", "ewma_anomaly"];
const MAX_SIZE: usize = 100 * 1024;

type Signature = (Vec<u8>, Vec<u8>);

fn expected_import(name: &str) -> Option<Signature> {
    let sig = match name {
        import::QUERY | import::QUERY_RANGE | import::SERIES | import::TAKE_REPLY => {
            (vec![I32, I32], vec![I32])
        }
        import::PANIC => (vec![I32, I32], vec![]),
        _ => return None,
    };
    Some(sig)
}

#[derive(Default, Debug)]
struct Module {
    /// (module, name, signature) of each function import.
    imports: Vec<(String, String, Signature)>,
    /// Names of table, memory and global imports: none are allowed.
    other_imports: Vec<String>,
    functions: Vec<(String, Signature)>,
    memories: Vec<String>,
}

/// Just enough of the binary format for the import, export, type and function
/// sections; the modules are our own build output, so it panics on surprises.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().expect("truncated module");
        self.0 = rest;
        *b
    }

    fn uleb(&mut self) -> u32 {
        let (mut value, mut shift) = (0u32, 0);
        loop {
            let b = self.byte();
            value |= u32::from(b & 0x7f) << shift;
            if b < 0x80 {
                return value;
            }
            shift += 7;
        }
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }

    fn name(&mut self) -> String {
        let n = self.uleb() as usize;
        String::from_utf8(self.take(n).to_vec()).expect("utf-8 name")
    }

    fn vec_bytes(&mut self) -> Vec<u8> {
        let n = self.uleb() as usize;
        self.take(n).to_vec()
    }

    fn limits(&mut self) {
        let flags = self.byte();
        self.uleb();
        if flags & 1 != 0 {
            self.uleb();
        }
    }
}

fn parse(wasm: &[u8]) -> Module {
    assert_eq!(&wasm[..8], b"\0asm\x01\0\0\0", "not a core wasm module");
    let mut r = Bytes(&wasm[8..]);
    let (mut types, mut funcs, mut m) = (Vec::new(), Vec::new(), Module::default());
    let mut imported_funcs = 0;
    while !r.0.is_empty() {
        let id = r.byte();
        let len = r.uleb() as usize;
        let mut s = Bytes(r.take(len));
        match id {
            1 => {
                for _ in 0..s.uleb() {
                    assert_eq!(s.byte(), 0x60);
                    types.push((s.vec_bytes(), s.vec_bytes()));
                }
            }
            2 => {
                for _ in 0..s.uleb() {
                    let (module, name) = (s.name(), s.name());
                    match s.byte() {
                        0 => {
                            let sig: Signature = types[s.uleb() as usize].clone();
                            m.imports.push((module, name, sig));
                            imported_funcs += 1;
                        }
                        1 => {
                            s.byte();
                            s.limits();
                            m.other_imports.push(name);
                        }
                        2 => {
                            s.limits();
                            m.other_imports.push(name);
                        }
                        _ => {
                            s.take(2);
                            m.other_imports.push(name);
                        }
                    }
                }
            }
            3 => funcs = (0..s.uleb()).map(|_| s.uleb() as usize).collect(),
            7 => {
                for _ in 0..s.uleb() {
                    let name = s.name();
                    let (kind, index) = (s.byte(), s.uleb() as usize);
                    match kind {
                        0 => {
                            let ty = funcs
                                [index.checked_sub(imported_funcs).expect("re-exported import")];
                            m.functions.push((name, types[ty].clone()));
                        }
                        2 => m.memories.push(name),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    m
}

#[test]
fn example_rules_are_valid_small_guest_modules() {
    let dir = tocsin_tests::build_example_rules();
    for name in EXAMPLES {
        let wasm = std::fs::read(dir.join(format!("{name}.wasm"))).expect("built module");
        assert!(wasm.len() <= MAX_SIZE, "{name}.wasm is {} bytes", wasm.len());
        let m = parse(&wasm);
        assert!(m.other_imports.is_empty(), "{name} imports {:?}", m.other_imports);
        for (module, field, sig) in &m.imports {
            assert_eq!(module, import::MODULE, "{name} imports {module}::{field}");
            assert_eq!(
                Some(sig),
                expected_import(field).as_ref(),
                "{name} imports {field} as {sig:?}"
            );
        }
        assert_eq!(m.memories, [export::MEMORY], "{name}");
        for (export, sig) in [
            (export::ABI_VERSION, (vec![], vec![I32])),
            (export::ALLOC, (vec![I32], vec![I32])),
            (export::EVALUATE, (vec![I32, I32], vec![I64])),
        ] {
            let found = m.functions.iter().find(|(n, _)| n == export).map(|(_, s)| s);
            assert_eq!(found, Some(&sig), "{name} export {export}");
        }
        let imports: Vec<_> = m.imports.iter().map(|i| i.1.as_str()).collect();
        eprintln!("{name}.wasm: {} bytes, imports {imports:?}", wasm.len());
    }
}
