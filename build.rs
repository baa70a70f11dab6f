//! Embeds the default model named in `bundled/default-model.txt`, so the plugin and the CLI
//! work with no files beside them.

use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let choice = root.join("bundled/default-model.txt");
    println!("cargo:rerun-if-changed={}", choice.display());
    let name = std::fs::read_to_string(&choice).unwrap_or_else(|e| panic!("{}: {e}", choice.display()));
    let folder = root.join("models").join(name.trim());
    let mut paths = Vec::new();
    for file in ["model.json", "decoder.safetensors"] {
        let path = folder.join(file);
        assert!(path.is_file(), "the default model `{}` lacks {} (bundled/default-model.txt names a folder of models/)", name.trim(), path.display());
        println!("cargo:rerun-if-changed={}", path.display());
        paths.push(path);
    }
    let code = format!(
        "/// The embedded default model's card.\npub const DEFAULT_CARD: &str = include_str!({:?});\n\
         /// The embedded default model's decoder weights.\npub static DEFAULT_WEIGHTS: &[u8] = include_bytes!({:?});\n",
        paths[0], paths[1]
    );
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("default_model.rs");
    std::fs::write(out, code).expect("OUT_DIR is writable");
}
