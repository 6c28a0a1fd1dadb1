//! Every fuzz target over its seed corpus (`fuzz/seeds/<target>/`), and over the example
//! configurations for the config target: the fuzzers' properties hold on the inputs we know,
//! on every `cargo test`, without a fuzzer installed. `fuzz/README.md` runs the fuzzers.

use std::path::Path;

#[test]
fn every_fuzz_target_holds_on_its_seeds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, target) in mcpgate::fuzzing::TARGETS {
        let dir = root.join("fuzz/seeds").join(name);
        let mut seeds: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        if name == "config" {
            seeds.extend(
                std::fs::read_dir(root.join("conf"))
                    .unwrap()
                    .map(|e| e.unwrap().path()),
            );
        }
        assert!(!seeds.is_empty(), "{name} has no seeds");
        for seed in seeds {
            target(&std::fs::read(&seed).unwrap());
        }
    }
}
